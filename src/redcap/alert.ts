import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "../log.js";

/**
 * The REDCap alert: raised when REDCap answers 429 (it has banned this IP, which only an administrator
 * can lift). Every REDCap queue is paused (globally, for every worker) so no further call deepens the
 * problem; the rest of the pipeline carries on. The flag lives in Redis for /readyz and the CLI.
 */
export interface RedcapAlert {
  at: string;
  status?: number;
  reason: string;
  redcapProject: string;
}

const redcapAlertKey = (prefix: string) => `${prefix}:redcap:alert`;

export async function readRedcapAlert(redis: Redis, prefix: string): Promise<RedcapAlert | undefined> {
  const v = await redis.get(redcapAlertKey(prefix));
  return v ? (JSON.parse(v) as RedcapAlert) : undefined;
}

export async function raiseRedcapAlert(
  redis: Redis,
  prefix: string,
  queues: readonly Queue[],
  log: Logger,
  alert: Omit<RedcapAlert, "at">,
): Promise<void> {
  const full: RedcapAlert = { at: new Date().toISOString(), ...alert };
  const first = await redis.set(redcapAlertKey(prefix), JSON.stringify(full), "NX");
  await Promise.all(queues.map((q) => q.pause()));
  if (first)
    log.error(
      {
        event: "redcap.banned",
        redcapProject: alert.redcapProject,
        status: alert.status,
        reason: alert.reason,
      },
      "REDCap refused this host (IP ban?): every REDCap stage is paused until an administrator clears the alert",
    );
}

/** After the ban was lifted: clear the flag and resume the REDCap queues. */
export async function clearRedcapAlert(
  redis: Redis,
  prefix: string,
  queues: readonly Queue[],
): Promise<void> {
  await redis.del(redcapAlertKey(prefix));
  await Promise.all(queues.map((q) => q.resume()));
}
