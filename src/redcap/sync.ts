/**
 * The REDCap sync stages: arrived studies into Incoming, transfer requests made
 * in REDCap into the transfer stage, and transfer results back to their request rows. Patient name and
 * ID reach REDCap only as SHA-256 hex digests, as the original populateIncoming.py stored them.
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import type { FionaConfig } from "../config/schema.js";
import type { SeriesSummary } from "../ingest/series-summary.js";
import { studyFileCount } from "../ingest/study-files.js";
import { readStudySummaries } from "../ingest/study-summaries.js";
import type { Logger } from "../log.js";
import type { SitePaths } from "../paths.js";
import type { TransferRecord } from "../registry/transfers.js";
import {
  InvalidRequestError,
  requestId,
  validateRequest,
  type TransferRequest,
} from "../transfer/request.js";
import { startTransfer, type TransferDeps } from "../transfer/start.js";
import { cellText, type RedcapClient, type RedcapImportRow, type RedcapRow } from "./client.js";

export const sha256hex = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

/** REDCap datetime as the original wrote it ('Y-m-d H:i', local time). */
function redcapDateTime(d: Date | string | number = new Date()): string {
  const x = new Date(d);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${x.getFullYear()}-${p(x.getMonth() + 1)}-${p(x.getDate())} ${p(x.getHours())}:${p(x.getMinutes())}`;
}

const dicomDate = (v: unknown) => {
  const m = /^(\d{4})(\d{2})(\d{2})/.exec(cellText(v));
  return m ? `${m[1]}-${m[2]}-${m[3]}` : "";
};

async function seriesSummaries(paths: SitePaths, studyUid: string): Promise<SeriesSummary[]> {
  return (await readStudySummaries(paths, studyUid)).map((x) => x.summary).filter((j) => j.SeriesInstanceUID);
}

const instanceOf = (r: RedcapRow) =>
  typeof r.redcap_repeat_instance === "number"
    ? r.redcap_repeat_instance
    : Number(r.redcap_repeat_instance) || 0;

/**
 * Push an arrived study to Incoming: the `incoming_studies` row and one `series` repeat per series not
 * yet there (next instance numbers). Returns how many series rows were added.
 */
export async function pushIncomingStudy(
  client: RedcapClient,
  paths: SitePaths,
  studyUid: string,
  arrivedAt = new Date(),
): Promise<number> {
  const summaries = await seriesSummaries(paths, studyUid);
  if (summaries.length === 0) return 0;
  const existing = await client.exportRecords({
    records: [studyUid],
    fields: ["study_instance_uid", "series_instance_uid"],
  });
  const known = new Set(
    existing
      .filter((r) => r.redcap_repeat_instrument === "series")
      .map((r) => cellText(r.series_instance_uid)),
  );
  let next =
    Math.max(0, ...existing.filter((r) => r.redcap_repeat_instrument === "series").map(instanceOf)) + 1;
  const fresh = summaries.filter((x) => !known.has(cellText(x.SeriesInstanceUID)));
  if (fresh.length === 0) return 0;
  const first = summaries[0]!;
  const rows: RedcapImportRow[] = [
    {
      study_instance_uid: studyUid,
      redcap_repeat_instrument: "",
      redcap_repeat_instance: "",
      study_institution_name: cellText(first.InstitutionName),
      study_aetitle_sender: cellText(first.IncomingConnection?.AETitleCaller),
      study_aetitle_addressed: cellText(first.IncomingConnection?.AETitleCalled),
      study_patient_name: first.PatientName !== undefined ? sha256hex(cellText(first.PatientName)) : "",
      study_patient_id: first.PatientID !== undefined ? sha256hex(cellText(first.PatientID)) : "",
      study_description: cellText(first.StudyDescription),
      study_date: dicomDate(first.StudyDate),
      study_time: cellText(first.StudyTime),
      study_accession_number: cellText(first.AccessionNumber),
      study_arrival_date: redcapDateTime(arrivedAt),
      incoming_studies_complete: "2",
    },
  ];
  for (const x of fresh) {
    rows.push({
      study_instance_uid: studyUid,
      redcap_repeat_instrument: "series",
      redcap_repeat_instance: String(next++),
      series_instance_uid: cellText(x.SeriesInstanceUID),
      series_description: cellText(x.SeriesDescription),
      series_date: dicomDate(x.SeriesDate ?? x.StudyDate),
      series_time: cellText(x.SeriesTime),
      series_num_files: /^\d+$/.test(cellText(x.NumFiles)) ? cellText(x.NumFiles) : "",
      series_sequence_name: cellText(x.SequenceName),
      series_classify_types: JSON.stringify(x.ClassifyType ?? []),
      series_complete: "2",
    });
  }
  const n = await client.importRecords(rows);
  if (n !== 1) throw new Error(`Incoming import counted ${n} records, expected 1`);
  return fresh.length;
}

/** Redis key remembering which `transfers` instance of Incoming a request came from. */
const requestInstanceKey = (prefix: string, id: string) => `${prefix}:redcap:transfer-instance:${id}`;

/** The transfers row of a request: the instance it came from, the matching row, or a new one. */
async function transferInstance(
  client: RedcapClient,
  redis: Redis,
  prefix: string,
  t: TransferRecord,
): Promise<{ instance: number; created: boolean }> {
  const known = Number(await redis.get(requestInstanceKey(prefix, t.requestId)));
  if (known > 0) return { instance: known, created: false };
  const rows = (
    await client.exportRecords({
      records: [t.studyInstanceUid],
      fields: ["study_instance_uid", "transfer_project_name", "transfer_name", "transfer_event_name"],
    })
  ).filter((r) => r.redcap_repeat_instrument === "transfers");
  const match = rows.find(
    (r) =>
      cellText(r.transfer_project_name) === t.project &&
      cellText(r.transfer_name) === t.participant &&
      cellText(r.transfer_event_name) === (t.event ?? ""),
  );
  if (match) return { instance: instanceOf(match), created: false };
  return { instance: Math.max(0, ...rows.map(instanceOf)) + 1, created: true };
}

/**
 * Write a transfer result to its request row in Incoming (transfer_date, transfer_mapped_uid, error
 * fields, processing time, transfers_complete); a request made outside REDCap gets a new row.
 */
export async function writeTransferResult(
  client: RedcapClient,
  redis: Redis,
  prefix: string,
  t: TransferRecord,
): Promise<number> {
  const { instance, created } = await transferInstance(client, redis, prefix, t);
  const ok = t.status === "done";
  const row: RedcapImportRow = {
    study_instance_uid: t.studyInstanceUid,
    redcap_repeat_instrument: "transfers",
    redcap_repeat_instance: String(instance),
    transfer_date: redcapDateTime(t.updatedAt),
    transfer_mapped_uid: t.pseudoStudyInstanceUid ?? "",
    transfer_error___1: "0",
    transfer_error___2: ok ? "0" : "1",
    transfer_error_message: ok
      ? ""
      : JSON.stringify({
          status: t.status,
          filesSent: t.filesSent,
          filesFailed: t.filesFailed,
          error: t.error ?? "",
        }),
    transfer_active_proc_time: t.durationMs !== undefined ? (t.durationMs / 1000).toFixed(1) : "",
    transfers_complete: ok ? "2" : "1",
  };
  if (created)
    Object.assign(row, {
      transfer_requested_date: redcapDateTime(t.createdAt),
      transfer_project_name: t.project,
      transfer_name: t.participant,
      transfer_event_name: t.event ?? "",
    });
  await client.importRecords([row], { overwriteBehavior: "overwrite" });
  await redis.set(requestInstanceKey(prefix, t.requestId), String(instance));
  return instance;
}

export interface PulledRequest {
  studyInstanceUid: string;
  instance: number;
  status: "started" | "running" | "done-unreported" | "not-on-disk" | "invalid";
  requestId?: string;
  error?: string;
}

/** The filter for open transfer requests (a project, no transfer_date), as the original used them. */
const OPEN_REQUESTS_FILTER =
  '[transfer_project_name] <> "" and [transfer_name] <> "" and [transfer_date] = ""';

/**
 * Start the transfer requests created in REDCap (`transfers` rows with a project and no transfer_date).
 * A request already running, or already run for the images on disk, is not started again; invalid ones
 * are answered in REDCap with transfer_date and an error so they are not pulled forever.
 */
export async function pullTransferRequests(
  client: RedcapClient,
  deps: TransferDeps & { redis: Redis; log: Logger; cfg: FionaConfig },
  onDoneUnreported: (requestId: string) => Promise<void>,
): Promise<PulledRequest[]> {
  const prefix = deps.cfg.redis.prefix;
  const rows = (
    await client.exportRecords({
      fields: ["study_instance_uid"],
      forms: ["transfers"],
      filterLogic: OPEN_REQUESTS_FILTER,
    })
  ).filter((r) => r.redcap_repeat_instrument === "transfers");
  const out: PulledRequest[] = [];
  for (const r of rows) {
    const studyInstanceUid = cellText(r.study_instance_uid);
    const instance = instanceOf(r);
    const event = cellText(r.transfer_event_name);
    const req: TransferRequest = {
      studyInstanceUid,
      project: cellText(r.transfer_project_name),
      participant: cellText(r.transfer_name),
      ...(event ? { event } : {}),
      requestedBy: "redcap",
    };
    const id = requestId(req);
    try {
      validateRequest(req, deps.cfg.projects);
    } catch (e) {
      if (!(e instanceof InvalidRequestError)) throw e;
      await client.importRecords([
        {
          study_instance_uid: studyInstanceUid,
          redcap_repeat_instrument: "transfers",
          redcap_repeat_instance: String(instance),
          transfer_date: redcapDateTime(),
          transfer_error___1: "1",
          transfer_error_message: JSON.stringify({ error: e.message }),
          transfers_complete: "1",
        },
      ]);
      deps.log.warn(
        { studyInstanceUid, project: req.project, instance, err: e.message },
        "REDCap transfer request is not valid",
      );
      out.push({ studyInstanceUid, instance, status: "invalid", error: e.message });
      continue;
    }
    await deps.redis.set(requestInstanceKey(prefix, id), String(instance));
    const files = await studyFileCount(deps.paths, studyInstanceUid);
    if (files === 0) {
      out.push({ studyInstanceUid, instance, status: "not-on-disk", requestId: id });
      continue;
    }
    const existing = await deps.transfers.get(id);
    if (existing?.status === "queued") {
      out.push({ studyInstanceUid, instance, status: "running", requestId: id });
      continue;
    }
    if (existing && existing.sourceFiles >= files) {
      // Ran already but REDCap never heard (write-back lost): report again.
      await onDoneUnreported(id);
      out.push({ studyInstanceUid, instance, status: "done-unreported", requestId: id });
      continue;
    }
    const started = await startTransfer(deps, req);
    deps.log.info(
      { studyInstanceUid, project: req.project, requestId: id, run: started.run, instance },
      "transfer started from a REDCap request",
    );
    out.push({ studyInstanceUid, instance, status: "started", requestId: id });
  }
  return out;
}

/** Event of a research project's REDCap: `<event lowercased>_arm_1`, or event_1_arm_1 without one. */
const projectEventName = (event?: string) =>
  event ? `${event.toLowerCase().replace(/[^a-z0-9_]+/g, "_")}_arm_1` : "event_1_arm_1";

/**
 * In a research project's own REDCap: the participant record (record_id, first_name, last_name set to
 * the pseudonym, as populateProjects.py) and an `imaging` repeat with the pseudonymized study UID, unless
 * that study is already listed. Returns whether an imaging row was added.
 */
export async function writeParticipantImaging(
  client: RedcapClient,
  t: TransferRecord,
  description = "",
): Promise<boolean> {
  if (t.status === "failed" || !t.pseudoStudyInstanceUid) return false;
  const existing = await client.exportRecords({
    records: [t.participant],
    fields: ["record_id", "img_study_instance_uid"],
  });
  const imaging = existing.filter((r) => r.redcap_repeat_instrument === "imaging");
  if (imaging.some((r) => cellText(r.img_study_instance_uid) === t.pseudoStudyInstanceUid)) return false;
  const event = "event_1_arm_1";
  const rows: RedcapImportRow[] = [
    {
      record_id: t.participant,
      redcap_event_name: projectEventName(t.event),
      first_name: t.participant,
      last_name: t.participant,
    },
    {
      record_id: t.participant,
      redcap_event_name: event,
      redcap_repeat_instrument: "imaging",
      redcap_repeat_instance: String(
        Math.max(0, ...imaging.filter((r) => r.redcap_event_name === event).map(instanceOf)) + 1,
      ),
      img_study_instance_uid: t.pseudoStudyInstanceUid,
      img_event_name: t.event ?? "",
      img_study_description: description,
    },
  ];
  await client.importRecords(rows);
  return true;
}
