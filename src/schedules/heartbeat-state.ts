import type { Redis } from "ioredis";

/** `<prefix>:heartbeat:receiver`: the receiver's self-check as metrics and `fiona status` read it. */
const heartbeatKey = (prefix: string) => `${prefix}:heartbeat:receiver`;

export type HeartbeatOutcome = { kind: "ok" } | { kind: "skipped" } | { kind: "failed"; error: string };

export interface HeartbeatState {
  consecutiveFailures: number;
  failuresTotal: number;
  skippedTotal: number;
  lastOk?: string;
  lastFailure?: string;
  lastSkipped?: string;
  lastError?: string;
}

/**
 * Skip the echo while another association was recently active: an echo during an open association
 * could overwrite the sender's AE title in the original FIONA. Only bytes that
 * arrived after our previous echo ended count, so our own echo never suppresses the next one; an
 * association that stays idle longer than the grace period does not suppress it either.
 */
export function shouldSkipEcho(now: number, lastActivityMs: number, lastEchoEndMs: number, graceMs: number) {
  return lastActivityMs > lastEchoEndMs && now - lastActivityMs < graceMs;
}

/** Record one outcome; returns the consecutive failures after it. */
export async function recordHeartbeat(
  redis: Redis,
  prefix: string,
  outcome: HeartbeatOutcome,
  now = Date.now(),
): Promise<number> {
  const key = heartbeatKey(prefix);
  const at = new Date(now).toISOString();
  if (outcome.kind === "ok") {
    await redis.hset(key, "consecutiveFailures", "0", "lastOk", at);
    return 0;
  }
  if (outcome.kind === "skipped") {
    await redis.multi().hset(key, "lastSkipped", at).hincrby(key, "skippedTotal", 1).exec();
    return Number((await redis.hget(key, "consecutiveFailures")) ?? 0);
  }
  const res = await redis
    .multi()
    .hincrby(key, "consecutiveFailures", 1)
    .hincrby(key, "failuresTotal", 1)
    .hset(key, "lastFailure", at, "lastError", outcome.error.slice(0, 300))
    .exec();
  return Number(res?.[0]?.[1] ?? 1);
}

export async function readHeartbeat(redis: Redis, prefix: string): Promise<HeartbeatState | undefined> {
  const h = await redis.hgetall(heartbeatKey(prefix));
  if (Object.keys(h).length === 0) return undefined;
  return {
    consecutiveFailures: Number(h.consecutiveFailures ?? 0),
    failuresTotal: Number(h.failuresTotal ?? 0),
    skippedTotal: Number(h.skippedTotal ?? 0),
    ...(h.lastOk ? { lastOk: h.lastOk } : {}),
    ...(h.lastFailure ? { lastFailure: h.lastFailure } : {}),
    ...(h.lastSkipped ? { lastSkipped: h.lastSkipped } : {}),
    ...(h.lastError ? { lastError: h.lastError } : {}),
  };
}
