import { DelayedError, UnrecoverableError, type Job, type Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { FionaConfig, RedcapConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import { raiseRedcapAlert } from "./alert.js";
import { clientFor, type RedcapClient } from "./client.js";
import { RedcapError } from "./errors.js";
import { RedisCallLimiter, redcapRateKey, type CallLimiter } from "./rate.js";

/** What every REDCap processor shares: the call limiter, the alert and the queues it pauses. */
export interface RedcapStageDeps {
  cfg: FionaConfig & { redcap: RedcapConfig };
  redis: Redis;
  log: Logger;
  /** The REDCap queues, paused together when REDCap bans this host. */
  redcapQueues: readonly Queue[];
  limiter?: CallLimiter;
  /** Build clients (tests may swap it); default clientFor(cfg.redcap, name, limiter). */
  client?: (name: string) => RedcapClient;
}

export function stageClient(deps: RedcapStageDeps): (name: string) => RedcapClient {
  if (deps.client) return deps.client;
  const limiter =
    deps.limiter ??
    new RedisCallLimiter(
      deps.redis,
      redcapRateKey(deps.cfg.redis.prefix),
      deps.cfg.redcap.rateLimitPerMinute,
    );
  const cache = new Map<string, RedcapClient>();
  return (name) => {
    let c = cache.get(name);
    if (!c) cache.set(name, (c = clientFor(deps.cfg.redcap, name, limiter)));
    return c;
  };
}

/**
 * Run a REDCap job body and map client errors onto BullMQ:
 * - 429 (IP ban): raise the alert, pause every REDCap queue and park the job (delayed, not failed and
 *   not counting as an attempt) so it runs once an administrator resumes the queues;
 * - 400/403/config errors: fail at once (UnrecoverableError), no retries;
 * - 5xx, timeouts, network errors, non-JSON 200s: ordinary failures, retried with the queue's backoff.
 */
export async function runRedcapJob<T>(
  deps: RedcapStageDeps,
  job: Job,
  token: string | undefined,
  body: () => Promise<T>,
): Promise<T> {
  try {
    return await body();
  } catch (e) {
    if (!(e instanceof RedcapError)) throw e;
    deps.log.warn(
      {
        queue: job.queueName,
        jobId: job.id,
        redcapProject: e.redcapProject,
        kind: e.kind,
        status: e.status,
        err: e.message,
      },
      "REDCap call failed",
    );
    if (e.kind === "banned") {
      await raiseRedcapAlert(deps.redis, deps.cfg.redis.prefix, deps.redcapQueues, deps.log, {
        redcapProject: e.redcapProject,
        ...(e.status !== undefined ? { status: e.status } : {}),
        reason: e.message,
      });
      await job.moveToDelayed(Date.now() + 60_000, token);
      throw new DelayedError();
    }
    if (!e.retryable) throw new UnrecoverableError(e.message);
    throw e;
  }
}
