import type { Redis } from "ioredis";

/** Runs a write and resolves with its result only once enough replicas hold it. */
export type ReplicatedWrite = <T>(write: () => Promise<T>) => Promise<T>;

/**
 * Writes on `redis` that count only once `replicas` replicas have acknowledged them (Redis WAIT).
 * Replication is asynchronous: a write only the master holds is lost when a replica is promoted, so
 * an acknowledgement must not rest on it. WAIT covers the writes of the connection it runs on; a
 * reconnect in between (ioredis sends an interrupted command again) would make it vacuous, so a
 * connection closed during the write or the WAIT fails the write.
 */
export function replicatedWrites(redis: Redis, replicas: number, timeoutMs: number): ReplicatedWrite {
  let closes = 0;
  if (replicas > 0) redis.on("close", () => closes++);
  return async (write) => {
    const before = closes;
    const result = await write();
    if (replicas === 0) return result;
    const acknowledged = await redis.wait(replicas, timeoutMs);
    if (closes !== before) throw new Error("Redis connection lost before the replicas confirmed the job");
    if (acknowledged < replicas) {
      throw new Error(`${acknowledged} of ${replicas} Redis replicas confirmed the job`);
    }
    return result;
  };
}
