// @ts-check
// The API calls the page makes, one function each, typed by what they return.
import { postForFile, request } from "./http.js";

/**
 * @import {
 *   AuditEntry, CouplingResult, ExportLayout, ExportRecord, NoAssignDestination, NoAssignForwardResult,
 *   Participant, ParticipantCheck, Project, Session, StartedTransfer, Study, StudyDetail, Target, Transfer,
 *   TransferPreview, QuarantineRecord,
 * } from "./types.js"
 */

const enc = encodeURIComponent;

/** @returns {Promise<Session>} */
export function getSession() {
  return request("GET", "/api/session", undefined, { allow401: true });
}

/**
 * @param {string} user
 * @param {string} password
 * @returns {Promise<Session>}
 */
export function signIn(user, password) {
  return request("POST", "/api/session", { user, password }, { allow401: true });
}

/** @returns {Promise<void>} */
export async function signOut() {
  await request("DELETE", "/api/session");
}

/** @returns {Promise<Project[]>} */
export function listProjects() {
  return request("GET", "/api/projects");
}

/**
 * @param {string} project
 * @returns {Promise<Participant[]>}
 */
export function listParticipants(project) {
  return request("GET", `/api/projects/${enc(project)}/participants`);
}

/**
 * @param {string} project
 * @param {string} participant
 * @returns {Promise<ParticipantCheck>}
 */
export function checkParticipant(project, participant) {
  return request("GET", `/api/projects/${enc(project)}/participants/check?participant=${enc(participant)}`);
}

/**
 * @param {string} query The filters as a query string ("" for none).
 * @param {boolean} poll
 * @returns {Promise<Study[]>}
 */
export function listStudies(query, poll) {
  return request("GET", `/api/studies${query ? `?${query}` : ""}`, undefined, { poll });
}

/**
 * @param {string} uid
 * @returns {Promise<StudyDetail>}
 */
export function getStudy(uid) {
  return request("GET", `/api/studies/${enc(uid)}`);
}

/**
 * @param {string} project "" for all the user's projects.
 * @param {boolean} poll
 * @returns {Promise<Transfer[]>}
 */
export function listTransfers(project, poll) {
  return request("GET", `/api/transfers${project ? `?project=${enc(project)}` : ""}`, undefined, { poll });
}

/**
 * @param {Target} t
 * @returns {Promise<TransferPreview>}
 */
export function previewTransfer(t) {
  const params = new URLSearchParams({
    study: t.studyInstanceUid,
    project: t.project,
    participant: t.participant,
  });
  if (t.event) params.set("event", t.event);
  return request("GET", `/api/transfers/preview?${params}`);
}

/**
 * @param {Target} t
 * @returns {Promise<StartedTransfer>}
 */
export function startTransfer(t) {
  return request("POST", "/api/transfers", t);
}

/**
 * @param {string} requestId
 * @returns {Promise<StartedTransfer>}
 */
export function retryTransfer(requestId) {
  return request("POST", `/api/transfers/${enc(requestId)}/retry`, {});
}

/**
 * @param {string} csv
 * @param {boolean} dryRun Only match, store nothing.
 * @returns {Promise<CouplingResult>}
 */
export function uploadCoupling(csv, dryRun) {
  return request("POST", `/api/coupling${dryRun ? "?dryRun=true" : ""}`, csv, { contentType: "text/csv" });
}

/**
 * @param {boolean} poll
 * @returns {Promise<ExportRecord[]>}
 */
export function listExports(poll) {
  return request("GET", "/api/exports", undefined, { poll });
}

/**
 * @param {Target} t
 * @param {ExportLayout} layout
 * @returns {Promise<ExportRecord>}
 */
export function requestExport(t, layout) {
  return request("POST", "/api/exports", { ...t, layout });
}

/** @returns {Promise<NoAssignDestination[]>} */
export function listNoAssignDestinations() {
  return request("GET", "/api/noassign/destinations");
}

/**
 * The study pseudonymized for the target, as a ZIP.
 * @param {Target} t
 */
export function noAssignZip(t) {
  return postForFile("/api/noassign", t, "application/zip");
}

/**
 * @param {Target} t
 * @param {string} destination
 * @returns {Promise<NoAssignForwardResult>}
 */
export function forwardNoAssign(t, destination) {
  return request("POST", "/api/noassign/forward", { ...t, destination });
}

/**
 * @param {string} stage One stage, or "" for all.
 * @returns {Promise<QuarantineRecord[]>}
 */
export async function listFailures(stage) {
  /** @type {{ failures: QuarantineRecord[] }} */
  const r = await request("GET", `/api/failures${stage ? `?stage=${enc(stage)}` : ""}`);
  return r.failures;
}

/**
 * @param {string} id
 * @param {"retry" | "dismiss"} action
 * @returns {Promise<unknown>}
 */
export function actOnFailure(id, action) {
  return request("POST", `/api/failures/${enc(id)}/${action}`);
}

/** @returns {Promise<AuditEntry[]>} */
export function listAudit() {
  return request("GET", "/api/audit?limit=200");
}
