/** Redis as `fiona doctor` sees it: reachable, persistent and without eviction. */
import type { FionaConfig } from "../config/schema.js";
import { connectProducer } from "../queues/connection.js";
import { readDurability } from "../queues/durability.js";
import { fail, ok, warn, type CheckResult } from "./check.js";

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
    return [ok(name, "reachable"), ...durability(await readDurability(redis))];
  } finally {
    redis.disconnect();
  }
}

function durability(r: Awaited<ReturnType<typeof readDurability>>): CheckResult[] {
  if (r.status === "unknown")
    return [
      warn(
        "Redis persistence",
        r.unknown.join("; "),
        "check appendonly/save and maxmemory-policy on the server",
      ),
    ];
  const problems = r.problems.map((p) =>
    fail(
      `Redis ${p.setting}`,
      `${p.value}: ${p.why}`,
      `set ${p.set} (redis.conf, or CONFIG SET and CONFIG REWRITE)`,
    ),
  );
  return problems.length ? problems : [ok("Redis persistence", "persists, and evicts nothing")];
}
