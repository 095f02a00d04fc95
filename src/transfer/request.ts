import { createHash } from "node:crypto";
import { isPathSafeUid } from "../dicom/uid.js";
import type { ProjectConfig } from "../config/schema.js";

export interface TransferRequest {
  studyInstanceUid: string;
  project: string;
  participant: string;
  event?: string;
  /** Who asked: a user name, "cli", "routing", … (never patient data). */
  requestedBy: string;
}

export class InvalidRequestError extends Error {
  override name = "InvalidRequestError";
}

/** The request's identity: one per (study, project, participant, event), so duplicates collapse. */
export function requestId(
  r: Pick<TransferRequest, "studyInstanceUid" | "project" | "participant" | "event">,
): string {
  return createHash("sha256")
    .update([r.studyInstanceUid, r.project, r.participant, r.event ?? ""].join("\0"))
    .digest("hex")
    .slice(0, 24);
}

/** Check a request against the project's definition; returns the project. */
export function validateRequest(r: TransferRequest, projects: readonly ProjectConfig[]): ProjectConfig {
  if (!isPathSafeUid(r.studyInstanceUid))
    throw new InvalidRequestError("StudyInstanceUID is not a valid UID");
  const project = projects.find((p) => p.name === r.project);
  if (!project) throw new InvalidRequestError(`unknown project ${r.project}`);
  if (project.participantPattern && !new RegExp(`^(?:${project.participantPattern})$`).test(r.participant)) {
    throw new InvalidRequestError(
      `participant does not match project ${project.name}'s pattern ${project.participantPattern}`,
    );
  }
  if (!/^[\x20-\x5b\x5d-\x7e]{1,64}$/.test(r.participant)) {
    throw new InvalidRequestError("participant must be 1-64 printable ASCII characters without backslash");
  }
  if (r.event !== undefined && project.events.length > 0 && !project.events.includes(r.event)) {
    throw new InvalidRequestError(
      `event ${r.event} is not one of project ${project.name}'s events (${project.events.join(", ")})`,
    );
  }
  return project;
}
