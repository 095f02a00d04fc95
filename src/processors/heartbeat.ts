import type { Redis } from "ioredis";
import type { FionaConfig } from "../config/schema.js";
import { cEcho, type EchoDestination } from "../dimse/echo.js";
import type { Logger } from "../log.js";
import type { HeartbeatJob } from "../queues/index.js";
import type { ReceiverHandle } from "../receiver/server.js";
import { recordHeartbeat, shouldSkipEcho } from "../schedules/heartbeat-state.js";
import type { Stage } from "./stage.js";

export interface HeartbeatDeps {
  cfg: FionaConfig;
  redis: Redis;
  receiver: Pick<ReceiverHandle, "echoEndpoint" | "listening" | "lastActivityMs">;
  log: Logger;
  /** Called once when failures in a row reach schedules.heartbeat.failuresBeforeExit. */
  onFailing: (consecutiveFailures: number) => void;
  echo?: (dest: EchoDestination, timeoutMs: number) => Promise<void>;
}

export type HeartbeatResult = { outcome: "ok" | "skipped"; consecutiveFailures: number };

/**
 * C-ECHO the receiver of this process through its loopback heartbeat listener, which shares the
 * association code and the event loop with the DICOM port but not its admission limits: a flood of
 * connections on the DICOM port then shows as refused connections, not as a dead receiver. A closed
 * DICOM port fails too. A failure fails the job (visible in Bull Board) after it is counted; the
 * receiver exits for a restart at failuresBeforeExit in a row.
 */
export const heartbeatProcessor: Stage<HeartbeatDeps, HeartbeatJob, HeartbeatResult> = (deps) => {
  const { cfg, redis, receiver, log } = deps;
  const hb = cfg.schedules.heartbeat;
  const echo = deps.echo ?? cEcho;
  const prefix = cfg.redis.prefix;
  let lastEchoEnd = 0;
  let fatal = false;
  return async (job) => {
    const now = Date.now();
    if (shouldSkipEcho(now, receiver.lastActivityMs(), lastEchoEnd, hb.activityGraceSeconds * 1000)) {
      const consecutiveFailures = await recordHeartbeat(redis, prefix, { kind: "skipped" }, now);
      log.debug({ jobId: job.id, event: "heartbeat-skipped" }, "heartbeat skipped: receiver busy");
      return { outcome: "skipped", consecutiveFailures };
    }
    const dest = { ...receiver.echoEndpoint, calledAe: cfg.aeTitle, callingAe: cfg.aeTitle };
    try {
      if (!receiver.listening()) throw new Error("the DICOM port is not listening");
      await echo(dest, hb.echoTimeoutMs);
    } catch (e) {
      const error = (e as Error).message;
      const failures = await recordHeartbeat(redis, prefix, { kind: "failed", error });
      log.error(
        { jobId: job.id, event: "heartbeat-failed", consecutiveFailures: failures, err: error },
        "heartbeat C-ECHO to the receiver failed",
      );
      if (failures >= hb.failuresBeforeExit && !fatal) {
        fatal = true;
        log.fatal(
          { event: "heartbeat-exit", consecutiveFailures: failures },
          "receiver fails its heartbeat; exiting so the process manager restarts it",
        );
        deps.onFailing(failures);
      }
      throw e;
    } finally {
      lastEchoEnd = Date.now();
    }
    await recordHeartbeat(redis, prefix, { kind: "ok" });
    return { outcome: "ok", consecutiveFailures: 0 };
  };
};
