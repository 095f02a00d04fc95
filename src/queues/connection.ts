import { Cluster, Redis, type RedisOptions } from "ioredis";
import type { RedisSettings } from "../config/redis.js";
import { reportRedisClient } from "./redis-errors.js";

export type ConnectionRole = "worker" | "producer";

/** Where Redis is (the `redis` config section, or just a url): one server, Sentinels, or a Cluster. */
export type RedisTarget = Pick<RedisSettings, "url"> &
  Partial<
    Pick<
      RedisSettings,
      "username" | "password" | "sentinels" | "sentinelName" | "sentinelPassword" | "cluster"
    >
  >;

/**
 * BullMQ's production guide: workers block and must retry forever (maxRetriesPerRequest: null);
 * producers must fail fast so a caller (the C-STORE handler) sees Redis going away at once.
 */
const ROLE_OPTIONS: Record<ConnectionRole, RedisOptions> = {
  worker: { maxRetriesPerRequest: null, enableReadyCheck: true },
  producer: {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  },
};

/** A command racing a master's demotion (which drops its clients) gets READONLY: reconnect, to the new one. */
const reconnectOnReadonly = (err: Error) => err.message.startsWith("READONLY");

/** Credentials for Sentinel and Cluster nodes: the keys, else the url's (a plain url carries its own). */
function credentials(target: RedisTarget): Pick<RedisOptions, "username" | "password"> {
  const u = new URL(target.url);
  const username = target.username ?? (decodeURIComponent(u.username) || undefined);
  const password = target.password ?? (decodeURIComponent(u.password) || undefined);
  return { ...(username && { username }), ...(password && { password }) };
}

/**
 * The one place that builds Redis clients. A Cluster client is returned typed as Redis: it offers the
 * command API FIONA and BullMQ use (commands, multi, pipeline, eval, status, events), and every key
 * shares the prefix's hash slot (src/config/redis.ts), so multi-key commands work on it.
 */
export function createRedis(target: RedisTarget, role: ConnectionRole, extra: RedisOptions = {}): Redis {
  const client = buildRedis(target, role, extra);
  // Connection errors become rate-limited JSON events (src/queues/redis-errors.ts).
  reportRedisClient(client, `redis:${role}`);
  return client;
}

function buildRedis(target: RedisTarget, role: ConnectionRole, extra: RedisOptions): Redis {
  const options: RedisOptions = {
    lazyConnect: false,
    connectionName: `fiona-${role}`,
    ...extra,
    ...ROLE_OPTIONS[role],
  };
  if (target.sentinels) {
    return new Redis({
      ...options,
      ...credentials(target),
      sentinels: target.sentinels,
      name: target.sentinelName,
      ...(target.sentinelPassword && { sentinelPassword: target.sentinelPassword }),
      // Not ioredis' failoverDetector: its +switch-master can cancel a reconnect in progress, which
      // leaves the client closed for good when the master crashed.
      reconnectOnError: reconnectOnReadonly,
    });
  }
  if (target.cluster) {
    // Offline queueing, laziness and the ready check are the cluster's; nodes reconnect via slot refresh.
    const { lazyConnect, enableOfflineQueue, enableReadyCheck, retryStrategy, ...node } = options;
    const cluster = new Cluster(target.cluster, {
      lazyConnect,
      ...(enableOfflineQueue !== undefined && { enableOfflineQueue }),
      ...(enableReadyCheck !== undefined && { enableReadyCheck }),
      ...(retryStrategy && { clusterRetryStrategy: retryStrategy }),
      redisOptions: { ...node, ...credentials(target) },
    });
    return cluster as unknown as Redis;
  }
  return new Redis(target.url, options);
}

/** Where a target points, for messages (no credentials). */
function describeRedis(target: RedisTarget): string {
  const nodes = (list: Array<{ host: string; port: number }>) =>
    list.map((n) => `${n.host}:${n.port}`).join(", ");
  if (target.sentinels) return `master "${target.sentinelName}" of Sentinels ${nodes(target.sentinels)}`;
  if (target.cluster) return `Redis Cluster ${nodes(target.cluster)}`;
  return new URL(target.url).host;
}

/**
 * A producer connection that is ready to use (offline queueing is off, so wait for the handshake).
 * Bounded: a Sentinel or Cluster client keeps looking for a reachable node and never fails by itself.
 */
export async function connectProducer(target: RedisTarget, timeoutMs = 10_000): Promise<Redis> {
  const client = createRedis(target, "producer", { lazyConnect: true });
  let timer: NodeJS.Timeout | undefined;
  const connecting = client.connect();
  connecting.catch(() => {}); // after a timeout, disconnect() rejects it
  try {
    await Promise.race([
      connecting,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
  } catch (e) {
    client.disconnect();
    throw new Error(`cannot connect to Redis at ${describeRedis(target)}: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
  return client;
}

/** True when a Redis server answers PING at url within timeoutMs. */
export async function redisAnswers(url: string, timeoutMs = 1000): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
  });
  client.on("error", () => {});
  try {
    await client.connect();
    return (await client.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}
