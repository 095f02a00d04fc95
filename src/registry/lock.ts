import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";

const RELEASE = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;
const RENEW = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** In-process queue per key, so callers in one process wait on a promise instead of polling Redis. */
const localTails = new Map<string, Promise<unknown>>();

export interface LockOptions {
  /** Lease length; a holder that dies frees the lock after this long. */
  ttlMs?: number;
  /** Give up waiting after this long (default: ttlMs). */
  waitMs?: number;
  /** Renew the lease while fn runs (for long holders such as a series being sent). */
  renew?: boolean;
}

/** Run fn while holding a Redis lock on key: mutual exclusion across workers and processes. */
export async function withLock<T>(
  redis: Redis,
  key: string,
  fn: () => Promise<T>,
  opts: LockOptions = {},
): Promise<T> {
  const prev = localTails.get(key) ?? Promise.resolve();
  const run = prev.catch(() => {}).then(() => withRedisLock(redis, key, fn, opts));
  const tail = run.catch(() => {});
  localTails.set(key, tail);
  try {
    return await run;
  } finally {
    if (localTails.get(key) === tail) localTails.delete(key);
  }
}

async function withRedisLock<T>(
  redis: Redis,
  key: string,
  fn: () => Promise<T>,
  opts: LockOptions,
): Promise<T> {
  const ttlMs = opts.ttlMs ?? 30_000;
  const token = randomUUID();
  const deadline = Date.now() + (opts.waitMs ?? ttlMs);
  for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
    if ((await redis.set(key, token, "PX", ttlMs, "NX")) === "OK") break;
    if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${key}`);
    await sleep(wait);
  }
  const timer = opts.renew
    ? setInterval(() => void redis.eval(RENEW, 1, key, token, ttlMs).catch(() => {}), Math.max(ttlMs / 3, 10))
    : undefined;
  try {
    return await fn();
  } finally {
    if (timer) clearInterval(timer);
    await redis.eval(RELEASE, 1, key, token);
  }
}
