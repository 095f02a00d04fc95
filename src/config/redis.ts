import { z } from "zod";
import { portSchema } from "./dicom-fields.js";

const redisNodeSchema = z.object({ host: z.string().min(1), port: portSchema }).strict();

/**
 * The hash tag a key starting with `prefix` is hashed by, or undefined when Redis would hash more than
 * the prefix (no tag, an empty `{}`, or a `{` whose `}` would come from the rest of the key).
 */
function prefixHashTag(prefix: string): string | undefined {
  const open = prefix.indexOf("{");
  if (open === -1) return undefined;
  const close = prefix.indexOf("}", open + 1);
  return close > open + 1 ? prefix.slice(open + 1, close) : undefined;
}

const urlHasPassword = (url: string) => {
  try {
    return new URL(url).password !== "";
  } catch {
    return false;
  }
};

/**
 * Where Redis is: one server (`url`), the master a set of Sentinels names (`sentinels` + `sentinelName`),
 * or a Redis Cluster (`cluster`: startup nodes). With Sentinels or Cluster the url's host is not used,
 * only its credentials (when `username`/`password` are not given).
 */
export const redisSchema = z
  .object({
    url: z.string().url().default("redis://127.0.0.1:6379"),
    /** Redis AUTH for the data nodes (master, replicas, cluster nodes); default: the url's. */
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    /** Sentinels to ask for the current master of `sentinelName`. */
    sentinels: z.array(redisNodeSchema).min(1).optional(),
    /** The master name the Sentinels monitor (`sentinel monitor <name> …`). */
    sentinelName: z.string().min(1).optional(),
    /** AUTH of the Sentinels themselves (their requirepass), when set. */
    sentinelPassword: z.string().min(1).optional(),
    /** Startup nodes of a Redis Cluster; the rest of the cluster is discovered from them. */
    cluster: z.array(redisNodeSchema).min(1).optional(),
    /** Every key lives under this prefix, so several instances (and test runs) share one Redis. */
    prefix: z
      .string()
      .min(1)
      .regex(/^[A-Za-z0-9_{}.-]+$/, "letters, digits, _ . - { } only")
      .default("fiona"),
    /** Start a child redis-server when none answers (fiona start only). */
    startLocal: z.boolean().default(true),
    /**
     * Redis must persist (AOF or RDB snapshots) and not evict keys (src/queues/durability.ts). Roles
     * start either way and log the setting to fix; true also makes /readyz not ready until it is fixed.
     */
    requireDurable: z.boolean().default(true),
    /** How often each role reads those settings again. */
    durabilityCheckSeconds: z.number().int().min(1).max(3600).default(30),
    /**
     * Replicas that must confirm an ingest job (Redis WAIT) before the C-STORE is answered Success.
     * Replication is asynchronous: without this a master crash can lose jobs of acknowledged images.
     */
    waitReplicas: z.number().int().min(0).max(16).default(0),
    /** How long the receiver waits for those confirmations before it answers failure. */
    waitTimeoutMs: z.number().int().min(10).max(60_000).default(1000),
  })
  .strict()
  .superRefine((r, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message });
    if (r.sentinels && r.cluster) issue("cluster", "use redis.sentinels or redis.cluster, not both");
    if (r.sentinels && !r.sentinelName) issue("sentinelName", "redis.sentinels needs redis.sentinelName");
    if (r.sentinelName && !r.sentinels) issue("sentinels", "redis.sentinelName needs redis.sentinels");
    if (r.sentinelPassword && !r.sentinels) issue("sentinelPassword", "only used with redis.sentinels");
    if (r.password && urlHasPassword(r.url))
      issue("password", "give the password in redis.url or in redis.password, not both");
    if (r.cluster && prefixHashTag(r.prefix) === undefined)
      issue(
        "prefix",
        'with redis.cluster the prefix needs a hash tag such as "{fiona}", so that every key is in one hash slot',
      );
    // WAIT has no key: a Cluster client would send it to any node, not to the one that took the job.
    if (r.cluster && r.waitReplicas > 0) issue("waitReplicas", "not supported with redis.cluster");
  });

export type RedisSettings = z.infer<typeof redisSchema>;
