import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { FionaConfig } from "../config/schema.js";
import { readDiskSpace, type DiskSpace } from "../fs/space.js";
import { QuarantineStore } from "../quarantine/store.js";
import { countQueues, type AllQueueCounts } from "../queues/counts.js";
import { ALL_QUEUES, createQueue, type QueueName } from "../queues/index.js";
import { workerLiveness } from "../queues/liveness.js";
import { diskUsedPercent } from "../schedules/clear-exports.js";
import { readHeartbeat, type HeartbeatState } from "../schedules/heartbeat-state.js";
import { DURATION_BUCKETS_S, metricsKeys } from "./keys.js";
import { ACTIVE_STALE_MS } from "./receiver.js";
import { parseTransferStages, type StageStats, type TransferStage } from "./transfer-stages.js";

export interface JobStats {
  completed: number;
  failed: number;
  durationSumMs: number;
  /** Non-cumulative counts per DURATION_BUCKETS_S bucket, the last one +Inf. */
  buckets: number[];
}

/** Everything /metrics and `fiona status` show: counts and identifiers of queues, never of studies. */
export interface MetricsSnapshot {
  queues: AllQueueCounts;
  workers: Record<string, { workers: number; oldestWaitingMs: number }>;
  jobs: Record<string, JobStats>;
  /** Where finished transfer runs spent their time (src/metrics/transfer-stages.ts). */
  transferStages: Record<TransferStage, StageStats>;
  receiver: {
    instancesStored: number;
    instancesFailed: number;
    bytesReceived: number;
    associationsAccepted: number;
    associationsRejected: number;
    /** Connections closed unread by admission control. */
    connectionsRefused: number;
    associationsActive: number;
  };
  /** dataDir's file system and its free-space floor (below it the receiver refuses C-STOREs). */
  disk?: { path: string; usedPercent: number } & DiskSpace;
  /** Quarantine records per stage (src/quarantine). */
  quarantined: Partial<Record<QueueName, number>>;
  /** The receiver's self-check (src/schedules/heartbeat-state.ts), when it has run. */
  heartbeat?: HeartbeatState;
}

const num = (v: string | undefined) => (v !== undefined && Number.isFinite(Number(v)) ? Number(v) : 0);

/** Pure part: the jobs hash as per-queue stats. */
export function parseJobStats(h: Record<string, string>): Record<string, JobStats> {
  const out: Record<string, JobStats> = {};
  const stats = (q: string) =>
    (out[q] ??= {
      completed: 0,
      failed: 0,
      durationSumMs: 0,
      buckets: new Array<number>(DURATION_BUCKETS_S.length + 1).fill(0),
    });
  for (const [field, v] of Object.entries(h)) {
    const [queue, kind, idx] = field.split(":");
    if (!queue || !(ALL_QUEUES as string[]).includes(queue)) continue;
    if (kind === "completed") stats(queue).completed = num(v);
    else if (kind === "failed") stats(queue).failed = num(v);
    else if (kind === "sum_ms") stats(queue).durationSumMs = num(v);
    else if (kind === "bucket" && Number(idx) <= DURATION_BUCKETS_S.length)
      stats(queue).buckets[Number(idx)] = num(v);
  }
  return out;
}

/** Pure part: the sum of the receivers' active-association gauges that are fresh. */
export function activeAssociations(h: Record<string, string>, now: number): number {
  let n = 0;
  for (const v of Object.values(h)) {
    const [active, at] = v.split("|");
    if (now - num(at) <= ACTIVE_STALE_MS) n += num(active);
  }
  return n;
}

/** Read the whole picture from Redis (and statfs of dataDir). Uses the caller's connection. */
export async function collectMetrics(
  redis: Redis,
  cfg: FionaConfig,
  now = Date.now(),
): Promise<MetricsSnapshot> {
  const keys = metricsKeys(cfg.redis.prefix);
  const queues = new Map<QueueName, Queue>(
    ALL_QUEUES.map((name) => [name, createQueue(name, redis, cfg.redis.prefix) as Queue]),
  );
  for (const q of queues.values()) q.on("error", () => {});
  try {
    const [counts, liveness, jobs, stages, rx, active, hb, usedPercent, space, quarantined] =
      await Promise.all([
        countQueues(queues),
        workerLiveness(queues.values()),
        redis.hgetall(keys.jobs),
        redis.hgetall(keys.transferStages),
        redis.hgetall(keys.receiver),
        redis.hgetall(keys.receiverActive),
        readHeartbeat(redis, cfg.redis.prefix),
        diskUsedPercent(cfg.dataDir).catch(() => undefined),
        readDiskSpace(cfg.dataDir, cfg.disk).catch(() => undefined),
        new QuarantineStore(redis, cfg.redis.prefix).countByStage(),
      ]);
    return {
      queues: counts,
      workers: Object.fromEntries(
        liveness.map((l) => [l.queue, { workers: l.workers, oldestWaitingMs: l.oldestWaitingMs }]),
      ),
      jobs: parseJobStats(jobs),
      transferStages: parseTransferStages(stages),
      quarantined,
      receiver: {
        instancesStored: num(rx.instancesStored),
        instancesFailed: num(rx.instancesFailed),
        bytesReceived: num(rx.bytesReceived),
        associationsAccepted: num(rx.associationsAccepted),
        associationsRejected: num(rx.associationsRejected),
        connectionsRefused: num(rx.connectionsRefused),
        associationsActive: activeAssociations(active, now),
      },
      ...(usedPercent !== undefined && space !== undefined
        ? { disk: { path: cfg.dataDir, usedPercent, ...space } }
        : {}),
      ...(hb ? { heartbeat: hb } : {}),
    };
  } finally {
    await Promise.allSettled([...queues.values()].map((q) => q.close()));
  }
}
