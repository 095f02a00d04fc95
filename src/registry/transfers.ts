import type { Redis } from "ioredis";
import type { TransferRequest } from "../transfer/request.js";
import type { StageTimings } from "../transfer/stage-timings.js";
import { registryKeys } from "./keys.js";

export type TransferStatus = "queued" | "done" | "partial" | "failed";

export interface TransferRecord extends TransferRequest {
  requestId: string;
  createdAt: string;
  updatedAt: string;
  runs: number;
  status: TransferStatus;
  pseudoStudyInstanceUid?: string;
  filesSent: number;
  filesFailed: number;
  filesDropped: number;
  /** Source images on disk when the latest run started (a later arrival with more re-runs it). */
  sourceFiles: number;
  durationMs?: number;
  /** Where the latest run's time went (absent for runs recorded before timings were kept). */
  stages?: StageTimings;
  error?: string;
}

export interface RunResult {
  status: Exclude<TransferStatus, "queued">;
  pseudoStudyInstanceUid?: string;
  filesSent: number;
  filesFailed: number;
  filesDropped: number;
  durationMs: number;
  stages?: StageTimings;
  error?: string;
}

/** Transfer requests and their latest results. No patient data: the participant is a pseudonym. */
export class TransferRegistry {
  private readonly keys;
  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = registryKeys(prefix);
  }

  /** Record the request (idempotent) and claim the next run number. */
  async startRun(id: string, r: TransferRequest, sourceFiles: number, now = Date.now()): Promise<number> {
    const key = this.keys.transfer(id);
    const iso = new Date(now).toISOString();
    const multi = this.redis.multi();
    const fields: Record<string, string> = {
      requestId: id,
      studyInstanceUid: r.studyInstanceUid,
      project: r.project,
      participant: r.participant,
      requestedBy: r.requestedBy,
      createdAt: iso,
      filesSent: "0",
      filesFailed: "0",
      filesDropped: "0",
    };
    if (r.event !== undefined) fields.event = r.event;
    for (const [f, v] of Object.entries(fields)) multi.hsetnx(key, f, v);
    multi.hincrby(key, "runs", 1);
    multi.hset(key, "status", "queued", "updatedAt", iso, "sourceFiles", String(sourceFiles));
    multi.zadd(this.keys.transfers, now, id);
    multi.sadd(this.keys.studyTransfers(r.studyInstanceUid), id);
    const res = await multi.exec();
    const runs = res?.[Object.keys(fields).length]?.[1];
    return Number(runs);
  }

  async finishRun(id: string, result: RunResult, now = Date.now()): Promise<void> {
    const fields: Record<string, string> = {
      status: result.status,
      filesSent: String(result.filesSent),
      filesFailed: String(result.filesFailed),
      filesDropped: String(result.filesDropped),
      durationMs: String(result.durationMs),
      updatedAt: new Date(now).toISOString(),
      error: result.error ?? "",
    };
    if (result.pseudoStudyInstanceUid) fields.pseudoStudyInstanceUid = result.pseudoStudyInstanceUid;
    // Cleared when this run has none: the timings shown are always the latest run's.
    fields.stages = result.stages ? JSON.stringify(result.stages) : "";
    await this.redis.multi().hset(this.keys.transfer(id), fields).zadd(this.keys.transfers, now, id).exec();
  }

  async get(id: string): Promise<TransferRecord | undefined> {
    const h = await this.redis.hgetall(this.keys.transfer(id));
    return h.requestId ? toRecord(h) : undefined;
  }

  async forStudy(studyUid: string): Promise<TransferRecord[]> {
    const ids = await this.redis.smembers(this.keys.studyTransfers(studyUid));
    return (await Promise.all(ids.map((i) => this.get(i)))).filter((t): t is TransferRecord => !!t);
  }

  async list(limit = 1000): Promise<TransferRecord[]> {
    const ids = await this.redis.zrevrange(this.keys.transfers, 0, limit - 1);
    return (await Promise.all(ids.map((i) => this.get(i)))).filter((t): t is TransferRecord => !!t);
  }

  /** Pseudonymized SOP instance UIDs the destination already accepted for this request. */
  sentKey(id: string): string {
    return this.keys.transferSent(id);
  }

  /** Instances of this request the destination has accepted, over all runs. */
  async sentCount(id: string): Promise<number> {
    return this.redis.scard(this.sentKey(id));
  }
}

function toRecord(h: Record<string, string>): TransferRecord {
  return {
    requestId: h.requestId!,
    studyInstanceUid: h.studyInstanceUid!,
    project: h.project!,
    participant: h.participant!,
    event: h.event || undefined,
    requestedBy: h.requestedBy ?? "",
    createdAt: h.createdAt!,
    updatedAt: h.updatedAt ?? h.createdAt!,
    runs: Number(h.runs ?? 0),
    status: (h.status as TransferStatus) ?? "queued",
    pseudoStudyInstanceUid: h.pseudoStudyInstanceUid,
    filesSent: Number(h.filesSent ?? 0),
    filesFailed: Number(h.filesFailed ?? 0),
    filesDropped: Number(h.filesDropped ?? 0),
    sourceFiles: Number(h.sourceFiles ?? 0),
    durationMs: h.durationMs ? Number(h.durationMs) : undefined,
    stages: h.stages ? (JSON.parse(h.stages) as StageTimings) : undefined,
    error: h.error || undefined,
  };
}
