import { Worker } from "bullmq";
import type { FionaConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import { heartbeatProcessor } from "../processors/heartbeat.js";
import { createRedis } from "../queues/connection.js";
import { reportRedisErrors } from "../queues/redis-errors.js";
import { createQueue, QUEUES } from "../queues/index.js";
import { emitAutomation } from "../automation/emit.js";
import type { ReceiverHandle } from "../receiver/server.js";
import { upsertSchedules } from "./index.js";

export interface HeartbeatHandle {
  close(): Promise<void>;
}

/**
 * The heartbeat worker runs in the receiver's process: only that process can exit to be restarted.
 * It also keeps the heartbeat scheduler up to date, so a receiver alone (without `fiona scheduler`)
 * checks itself.
 */
export async function startHeartbeat(
  cfg: FionaConfig,
  receiver: ReceiverHandle,
  log: Logger,
  onFailing: (consecutiveFailures: number) => void,
): Promise<HeartbeatHandle> {
  const connection = createRedis(cfg.redis, "worker");
  await upsertSchedules(cfg, connection, { queues: [QUEUES.heartbeat] });
  if (!cfg.schedules.heartbeat.enabled) {
    await connection.quit();
    return { close: async () => {} };
  }
  const automation = createQueue(QUEUES.automation, connection, cfg.redis.prefix);
  // Tell the subscribers (automation.subscriptions) before the process goes away.
  const failing = (consecutiveFailures: number) =>
    void emitAutomation(cfg, automation, { type: "heartbeat-failing", consecutiveFailures })
      .catch((e: Error) => log.warn({ err: e.message }, "heartbeat-failing automation not emitted"))
      .finally(() => onFailing(consecutiveFailures));
  const worker = new Worker(
    QUEUES.heartbeat,
    heartbeatProcessor({ cfg, redis: connection, receiver, log, onFailing: failing }),
    { connection, prefix: cfg.redis.prefix, concurrency: 1 },
  );
  reportRedisErrors(worker, `worker:${QUEUES.heartbeat}`);
  return {
    async close() {
      await worker.close();
      await automation.close();
      await connection.quit().catch(() => connection.disconnect());
    },
  };
}
