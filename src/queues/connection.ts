import { Redis, type RedisOptions } from "ioredis";

export type ConnectionRole = "worker" | "producer";

/**
 * BullMQ's production guide: workers block and must retry forever (maxRetriesPerRequest: null);
 * producers must fail fast so a caller (the C-STORE handler) sees Redis going away at once.
 */
export function createRedis(url: string, role: ConnectionRole, extra: RedisOptions = {}): Redis {
  const common: RedisOptions = { lazyConnect: false, connectionName: `fiona-${role}`, ...extra };
  if (role === "worker") {
    return new Redis(url, { ...common, maxRetriesPerRequest: null, enableReadyCheck: true });
  }
  return new Redis(url, {
    ...common,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
}

/** A producer connection that is ready to use (offline queueing is off, so wait for the handshake). */
export async function connectProducer(url: string): Promise<Redis> {
  const client = createRedis(url, "producer", { lazyConnect: true });
  client.on("error", () => {}); // surfaced by the failing command instead
  try {
    await client.connect();
  } catch (e) {
    client.disconnect();
    throw new Error(`cannot connect to Redis at ${new URL(url).host}: ${(e as Error).message}`);
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
