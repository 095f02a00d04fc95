import type { Redis } from "ioredis";

/**
 * A sliding-window limit on REDCap calls shared by every worker and process on one Redis: at most
 * `perMinute` calls in any 60 s. REDCap bans an IP for good once it exceeds its threshold (600/min by
 * default) over a sliding minute, so a fixed window (which allows twice the rate across its boundary) is
 * not enough.
 */
const ACQUIRE = `
local t = redis.call("time")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("zremrangebyscore", KEYS[1], "-inf", now - 60000)
local n = redis.call("zcard", KEYS[1])
if n < tonumber(ARGV[1]) then
  redis.call("zadd", KEYS[1], now, ARGV[2])
  redis.call("pexpire", KEYS[1], 61000)
  return 0
end
local oldest = redis.call("zrange", KEYS[1], 0, 0, "withscores")
return math.max(1, tonumber(oldest[2]) + 60000 - now)`;

export interface CallLimiter {
  /** Resolves when one call may be made now. */
  acquire(): Promise<void>;
}

export class RedisCallLimiter implements CallLimiter {
  private seq = 0;
  private readonly tag = `${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly perMinute: number,
  ) {}

  async acquire(): Promise<void> {
    for (;;) {
      const wait = Number(
        await this.redis.eval(ACQUIRE, 1, this.key, this.perMinute, `${this.tag}-${++this.seq}`),
      );
      if (wait <= 0) return;
      // Spread waiting callers a little so they do not all retry in the same millisecond.
      await new Promise((r) => setTimeout(r, Math.min(wait, 1000) + Math.floor(Math.random() * 20)));
    }
  }
}

export const redcapRateKey = (prefix: string) => `${prefix}:redcap:rate`;
