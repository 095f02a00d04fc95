/** Redis keys of the cross-process metrics (receiver, workers and web run as separate processes). */
export const metricsKeys = (prefix: string) => ({
  /** Hash: `<queue>:completed`, `<queue>:failed`, `<queue>:sum_ms`, `<queue>:bucket:<i>` counters. */
  jobs: `${prefix}:metrics:jobs`,
  /** Hash: `<stage>:count`, `<stage>:sum_ms`, `<stage>:bucket:<i>` of finished transfer runs. */
  transferStages: `${prefix}:metrics:transfer-stages`,
  /** Hash of receiver counters (files, bytes, associations). */
  receiver: `${prefix}:metrics:receiver`,
  /** Hash `<host>:<pid>` → `<active associations>|<epoch ms>`, one field per receiver process. */
  receiverActive: `${prefix}:metrics:receiver:active`,
});

/** Upper bounds (seconds) of the job duration and transfer stage histograms; the last bucket is +Inf. */
export const DURATION_BUCKETS_S = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800] as const;

/** Index of the bucket a duration falls in (DURATION_BUCKETS_S.length = +Inf). */
export function bucketIndex(ms: number): number {
  const i = DURATION_BUCKETS_S.findIndex((le) => ms <= le * 1000);
  return i < 0 ? DURATION_BUCKETS_S.length : i;
}
