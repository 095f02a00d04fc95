import { DelayedError, type Job, type Processor } from "bullmq";
import { diskFullOf } from "../fs/disk-full.js";
import type { Logger } from "../log.js";

export interface DiskFullBackoff {
  /** First delay; doubled per repeat of the same job… */
  fullRetryMs: number;
  /** …up to this. */
  fullRetryMaxMs: number;
}

/** Job data field counting a job's disk-full delays: drives its backoff, and Bull Board shows it. */
const DISK_FULL_DELAYS = "diskFullDelays";

function delaysSoFar(job: Job): number {
  const data: unknown = job.data;
  if (typeof data !== "object" || data === null) return 0;
  const n = (data as Record<string, unknown>)[DISK_FULL_DELAYS];
  return typeof n === "number" && Number.isInteger(n) && n > 0 ? n : 0;
}

/**
 * A full disk (ENOSPC, EDQUOT, also when wrapped as a cause) is no fault of the job: instead of
 * failing an attempt it goes back to delayed with a growing delay and runs again once space is back,
 * however long that takes. An acknowledged image is never given up for lack of space.
 */
export function retryWhenDiskFull(
  handler: Processor,
  queue: string,
  log: Logger,
  backoff: DiskFullBackoff,
): Processor {
  return async (job, token, signal) => {
    try {
      return (await handler(job, token, signal)) as unknown;
    } catch (err) {
      const full = diskFullOf(err);
      if (full === undefined || token === undefined) throw err;
      const delays = delaysSoFar(job);
      const delayMs = Math.min(backoff.fullRetryMaxMs, backoff.fullRetryMs * 2 ** Math.min(delays, 30));
      try {
        if (typeof job.data === "object" && job.data !== null)
          await job.updateData({ ...(job.data as object), [DISK_FULL_DELAYS]: delays + 1 });
        // skips the attempt: BullMQ's documented way for a job to postpone itself
        await job.moveToDelayed(Date.now() + delayMs, token);
      } catch {
        throw err; // Redis or the lock went away: fail this attempt as it would have
      }
      // Code and syscall only: the message names paths, and participants/<PatientID>/ is one of them.
      log.warn(
        { event: "disk-full-retry", queue, jobId: job.id, delayMs, delays: delays + 1, ...full },
        "disk full: job delayed without using an attempt",
      );
      throw new DelayedError();
    }
  };
}
