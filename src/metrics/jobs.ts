import type { Job, Worker } from "bullmq";
import type { Redis } from "ioredis";
import { bucketIndex, metricsKeys } from "./keys.js";

/**
 * Per-queue job counters and duration histogram, accumulated in memory and written to Redis in one
 * pipeline per flush, so the hot ingest path costs no extra round trip per job.
 */
export class JobMetrics {
  private pending = new Map<string, number>();
  private readonly key: string;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    flushMs = 1000,
  ) {
    this.key = metricsKeys(prefix).jobs;
    this.timer = setInterval(() => void this.flush().catch(() => {}), flushMs);
    this.timer.unref();
  }

  record(queue: string, outcome: "completed" | "failed", durationMs?: number): void {
    this.add(`${queue}:${outcome}`, 1);
    if (durationMs === undefined || !(durationMs >= 0)) return;
    this.add(`${queue}:sum_ms`, Math.round(durationMs));
    this.add(`${queue}:bucket:${bucketIndex(durationMs)}`, 1);
  }

  /** Count every completed and failed attempt of this worker's jobs. */
  attach(worker: Worker, queue: string): void {
    const took = (job: Job | undefined) =>
      job?.processedOn && job.finishedOn ? job.finishedOn - job.processedOn : undefined;
    worker.on("completed", (job) => this.record(queue, "completed", took(job)));
    worker.on("failed", (job) => this.record(queue, "failed", took(job)));
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const p = this.redis.pipeline();
    for (const [field, n] of batch) p.hincrby(this.key, field, n);
    try {
      await p.exec();
    } catch (e) {
      // Redis is away: keep the counts for the next flush.
      for (const [field, n] of batch) this.add(field, n);
      throw e;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush().catch(() => {});
  }

  private add(field: string, n: number) {
    this.pending.set(field, (this.pending.get(field) ?? 0) + n);
  }
}
