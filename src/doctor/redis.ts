/** Redis as `fiona doctor` sees it: reachable, and (once known) persistent and without eviction. */
import type { FionaConfig } from "../config/schema.js";
import { connectProducer } from "../queues/connection.js";
import { fail, ok, type CheckResult } from "./check.js";

export async function checkRedis(cfg: FionaConfig): Promise<CheckResult[]> {
  const name = "Redis";
  let redis;
  try {
    redis = await connectProducer(cfg.redis);
  } catch (e) {
    return [fail(name, (e as Error).message, "start Redis, or point redis.url at it")];
  }
  try {
    await redis.ping();
    return [ok(name, "reachable")];
  } finally {
    redis.disconnect();
  }
}
