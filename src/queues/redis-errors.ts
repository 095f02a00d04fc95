import type { Redis } from "ioredis";
import { log as processLog, type Logger } from "../log.js";
import { RepeatLimiter } from "../util/repeat-limiter.js";

/**
 * Every Redis client and BullMQ object of a process reports its "error" events here. During an
 * outage each of them fails on every reconnect attempt; one JSON event per distinct error, then one
 * summary with a count per window, keeps the log readable. Without a listener ioredis and BullMQ
 * print raw stack traces instead.
 */
const WINDOW_MS = 10_000;

let logger: Logger = processLog;
let errorsSinceReady = 0;

const limiter = new RepeatLimiter<string>({
  windowMs: WINDOW_MS,
  first: (err, source) =>
    logger.error({ event: "redis-error", err, count: 1, sources: [source] }, "Redis error"),
  repeated: (err, count, sources) =>
    logger.error(
      { event: "redis-error", err, count, sources, windowSeconds: WINDOW_MS / 1000 },
      `Redis error repeated ${count} times`,
    ),
});

/** Write the Redis error events of this process (or worker thread) with this logger. */
export function logRedisErrorsTo(log: Logger): void {
  logger = log;
}

/** What a BullMQ Queue, Worker, FlowProducer, QueueEvents and an ioredis client have in common. */
export interface ErrorEmitter {
  on(event: "error", listener: (err: Error) => void): unknown;
}

/** Node 20 reports a refused dual-stack connect as an AggregateError with an empty message. */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.message) return err.message;
  const inner = (err as Error & { errors?: unknown[] }).errors;
  if (Array.isArray(inner) && inner.length) return inner.map(describe).join("; ");
  return (err as Error & { code?: string }).code ?? err.name;
}

/** Log emitter's errors as rate-limited redis-error events; source names it ("queue:ingest"). */
export function reportRedisErrors(emitter: ErrorEmitter, source: string): void {
  emitter.on("error", (err: Error) => {
    errorsSinceReady++;
    limiter.note(describe(err), source);
  });
}

/** An ioredis client: its errors, and one redis-reconnected event when the first client is back. */
export function reportRedisClient(client: Redis, source: string): void {
  reportRedisErrors(client, source);
  client.on("ready", () => {
    if (errorsSinceReady === 0) return;
    const errors = errorsSinceReady;
    errorsSinceReady = 0;
    limiter.reset();
    logger.info({ event: "redis-reconnected", errors }, "Redis connection restored");
  });
}
