import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";

const RELEASE = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** In-process queue per key, so callers in one process wait on a promise instead of polling Redis. */
const localTails = new Map<string, Promise<unknown>>();

/**
 * Run fn while holding a Redis lock on key: mutual exclusion across workers and processes.
 * The lease (ttlMs) outlives any sane fn; an expired lease is only a risk if fn stalls longer.
 */
export async function withLock<T>(redis: Redis, key: string, fn: () => Promise<T>, ttlMs = 30_000): Promise<T> {
  const prev = localTails.get(key) ?? Promise.resolve();
  const run = prev.catch(() => {}).then(() => withRedisLock(redis, key, fn, ttlMs));
  const tail = run.catch(() => {});
  localTails.set(key, tail);
  try {
    return await run;
  } finally {
    if (localTails.get(key) === tail) localTails.delete(key);
  }
}

async function withRedisLock<T>(redis: Redis, key: string, fn: () => Promise<T>, ttlMs: number): Promise<T> {
  const token = randomUUID();
  const deadline = Date.now() + ttlMs;
  for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
    if ((await redis.set(key, token, "PX", ttlMs, "NX")) === "OK") break;
    if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${key}`);
    await sleep(wait);
  }
  try {
    return await fn();
  } finally {
    await redis.eval(RELEASE, 1, key, token);
  }
}
