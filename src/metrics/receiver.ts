import { hostname } from "node:os";
import type { FionaConfig } from "../config/schema.js";
import { createRedis } from "../queues/connection.js";
import type { ReceiverStats } from "../receiver/server.js";
import { metricsKeys } from "./keys.js";

const COUNTERS = [
  "instancesStored",
  "instancesFailed",
  "bytesReceived",
  "associationsAccepted",
  "associationsRejected",
  "connectionsRefused",
] as const satisfies ReadonlyArray<keyof ReceiverStats>;
type Counter = (typeof COUNTERS)[number];

/** A receiver's active-associations field older than this is from a process that is gone. */
export const ACTIVE_STALE_MS = 10_000;

/**
 * Copy the receiver's in-memory counters to Redis every flushMs (increments since the last flush)
 * and its active associations as this process's gauge; the web process reads them for /metrics.
 */
export function startReceiverMetrics(cfg: FionaConfig, stats: () => ReceiverStats, flushMs = 1000) {
  const redis = createRedis(cfg.redis, "producer");
  redis.on("error", () => {}); // a flush that fails is retried by the next one
  const keys = metricsKeys(cfg.redis.prefix);
  const field = `${hostname()}:${process.pid}`;
  const flushed = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Record<Counter, number>;
  let running: Promise<void> | undefined;
  const flush = async () => {
    const s = stats();
    const p = redis.pipeline();
    const delta = COUNTERS.map((c) => [c, s[c] - flushed[c]] as const).filter(([, d]) => d > 0);
    for (const [c, d] of delta) p.hincrby(keys.receiver, c, d);
    p.hset(keys.receiverActive, field, `${s.activeAssociations}|${Date.now()}`);
    await p.exec();
    for (const [c, d] of delta) flushed[c] += d;
  };
  const tick = () => {
    running ??= flush()
      .catch(() => {}) // Redis away: the increments go out with the next flush
      .finally(() => (running = undefined));
  };
  const timer = setInterval(tick, flushMs);
  timer.unref();
  return {
    async close() {
      clearInterval(timer);
      await running;
      await flush().catch(() => {});
      await redis.hdel(keys.receiverActive, field).catch(() => {});
      redis.disconnect();
    },
  };
}
