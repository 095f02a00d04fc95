import type { FionaConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import { createRedis } from "../queues/connection.js";
import { upsertSchedules } from "./index.js";

/** Re-apply the schedulers this often, so a restored or flushed Redis gets them back without a restart. */
const REAPPLY_MS = 5 * 60_000;

export interface SchedulerHandle {
  close(): Promise<void>;
}

/** The `fiona scheduler` role (also part of `fiona start`): upsert every job scheduler and keep them. */
export async function startScheduler(cfg: FionaConfig, log: Logger): Promise<SchedulerHandle> {
  const connection = createRedis(cfg.redis, "worker");
  const apply = () =>
    upsertSchedules(cfg, connection, { log }).catch((e: Error) =>
      log.error({ event: "schedules-failed", err: e.message }, "job schedulers not updated"),
    );
  await upsertSchedules(cfg, connection, { log });
  const timer = setInterval(() => void apply(), REAPPLY_MS);
  return {
    async close() {
      clearInterval(timer);
      await connection.quit().catch(() => connection.disconnect());
    },
  };
}
