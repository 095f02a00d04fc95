import type { FionaConfig } from "../config/schema.js";
import { connectProducer } from "../queues/connection.js";
import { QUEUES, createQueue } from "../queues/index.js";
import { clearRedcapAlert, readRedcapAlert } from "./alert.js";
import { auditCliAction } from "../cli/cli-audit.js";

/** `fiona redcap clear-alert`: clear the REDCap alert flag and resume the paused REDCap queues. */
export async function clearRedcapAlertCli(cfg: FionaConfig): Promise<void> {
  const redis = await connectProducer(cfg.redis);
  const prefix = cfg.redis.prefix;
  const queues = [
    createQueue(QUEUES.redcapPush, redis, prefix),
    createQueue(QUEUES.redcapSync, redis, prefix),
  ];
  try {
    const alert = await readRedcapAlert(redis, prefix);
    await clearRedcapAlert(redis, prefix, queues);
    await auditCliAction(cfg, { action: "redcap-clear-alert" });
    console.log(
      alert
        ? `REDCap alert of ${alert.at} cleared; REDCap stages resumed`
        : "no REDCap alert was raised; REDCap stages resumed",
    );
  } finally {
    await Promise.all(queues.map((q) => q.close()));
    await redis.quit().catch(() => redis.disconnect());
  }
}
