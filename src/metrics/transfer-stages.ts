/**
 * The `fiona_transfer_stage_seconds{stage}` histogram: where each finished transfer run's time went,
 * counted in Redis (one HINCRBY pipeline per run, runs are few) so every process's /metrics agrees.
 */
import type { Redis } from "ioredis";
import type { StageTimings } from "../transfer/stage-timings.js";
import { bucketIndex, DURATION_BUCKETS_S, metricsKeys } from "./keys.js";

export const TRANSFER_STAGES = ["queue_wait", "deidentify", "send", "bookkeeping"] as const;
export type TransferStage = (typeof TRANSFER_STAGES)[number];

export interface StageStats {
  count: number;
  sumMs: number;
  /** Non-cumulative counts per DURATION_BUCKETS_S bucket, the last one +Inf. */
  buckets: number[];
}

/** What one run adds per stage: the wall time of de-identification and send, not their sums. */
export function stageObservations(t: StageTimings): Record<TransferStage, number> {
  return {
    queue_wait: t.queueWaitMs,
    deidentify: t.deidentify.spanMs,
    send: t.send.spanMs,
    bookkeeping: t.bookkeepingMs,
  };
}

export async function recordTransferStages(redis: Redis, prefix: string, t: StageTimings): Promise<void> {
  const key = metricsKeys(prefix).transferStages;
  const p = redis.pipeline();
  for (const [stage, ms] of Object.entries(stageObservations(t))) {
    p.hincrby(key, `${stage}:count`, 1);
    p.hincrby(key, `${stage}:sum_ms`, Math.round(ms));
    p.hincrby(key, `${stage}:bucket:${bucketIndex(ms)}`, 1);
  }
  await p.exec();
}

const num = (v: string | undefined) => (v !== undefined && Number.isFinite(Number(v)) ? Number(v) : 0);

/** Pure part: the hash as stats per stage (every stage present, zeros until a run finished). */
export function parseTransferStages(h: Record<string, string>): Record<TransferStage, StageStats> {
  const out = Object.fromEntries(
    TRANSFER_STAGES.map((s) => [
      s,
      { count: 0, sumMs: 0, buckets: new Array<number>(DURATION_BUCKETS_S.length + 1).fill(0) },
    ]),
  ) as Record<TransferStage, StageStats>;
  for (const [field, v] of Object.entries(h)) {
    const [stage, kind, idx] = field.split(":");
    const stats = out[stage as TransferStage];
    if (!stats) continue;
    if (kind === "count") stats.count = num(v);
    else if (kind === "sum_ms") stats.sumMs = num(v);
    else if (kind === "bucket" && Number(idx) <= DURATION_BUCKETS_S.length)
      stats.buckets[Number(idx)] = num(v);
  }
  return out;
}
