import { createHash } from "node:crypto";
import path from "node:path";
import type { QueueName } from "../queues/index.js";

/**
 * A stage's quarantine record: an object (a file, a series, a study, an upload…) that a stage refused
 * or whose job failed for good. It outlives BullMQ's bounded failed set until someone retries or
 * dismisses it. Identifiers and a reason only: job payloads carry no patient data, and reasons are
 * the pipeline's own error messages.
 */
export interface QuarantineRecord {
  id: string;
  stage: QueueName;
  reason: string;
  ids: ObjectIds;
  /** Files of the object the stage refused, when it counts them. */
  files?: number;
  /** The job that failed for good and its payload, so it can be run again. */
  job?: { id: string; name: string; data: unknown };
  firstAt: string;
  lastAt: string;
  /** How many times the same object failed the same stage. */
  count: number;
}

export interface ObjectIds {
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  sopInstanceUid?: string;
  requestId?: string;
  run?: number;
  project?: string;
  participant?: string;
  uploadId?: string;
  exportId?: string;
  subscription?: string;
  /** File name (not the path) of an archived file. */
  file?: string;
}

export type QuarantineInput = Omit<QuarantineRecord, "id" | "firstAt" | "lastAt" | "count">;

const STRING_IDS = [
  "studyInstanceUid",
  "seriesInstanceUid",
  "sopInstanceUid",
  "requestId",
  "project",
  "participant",
  "uploadId",
  "exportId",
  "subscription",
] as const;

/** The identifiers a job payload carries (every payload is identifiers only, see src/queues). */
export function idsOf(data: unknown): ObjectIds {
  if (!data || typeof data !== "object") return {};
  const d = data as Record<string, unknown>;
  const ids: ObjectIds = {};
  for (const k of STRING_IDS) if (typeof d[k] === "string" && d[k]) ids[k] = d[k];
  if (typeof d.run === "number") ids.run = d.run;
  if (typeof d.path === "string") ids.file = path.basename(d.path);
  return ids;
}

/**
 * One record per object and stage: the same job (or the same series of the same transfer request)
 * failing again updates its record rather than adding one.
 */
export function recordIdOf(input: QuarantineInput): string {
  if (input.job) return jobRecordId(input.stage, input.job.id);
  const { requestId = "", studyInstanceUid = "", seriesInstanceUid = "" } = input.ids;
  return digest([input.stage, "object", requestId, studyInstanceUid, seriesInstanceUid]);
}

/** The id of the record a job that failed for good left in its stage's quarantine. */
export function jobRecordId(stage: string, jobId: string): string {
  return digest([stage, "job", jobId]);
}

const digest = (parts: string[]) => createHash("sha256").update(parts.join("\0")).digest("hex").slice(0, 16);

/** One line, bounded: a reason is for a list, the job's log in Bull Board has the rest. */
export function reasonOf(message: string): string {
  const line = message.replace(/\s+/g, " ").trim() || "failed";
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}
