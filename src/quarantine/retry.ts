import { notePendingIngest } from "../ingest/pending.js";
import { QUEUES, createQueue, jobOptions, type QueueName } from "../queues/index.js";
import type { RoutingDeps } from "../routing/deps.js";
import { TransferRetryRefused, retryTransfer } from "../routing/retry.js";
import type { QuarantineRecord } from "./record.js";
import type { QuarantineStore } from "./store.js";

/** A transfer's series re-run as the request's Retry does; everything else through the queues. */
export interface RetryDeps extends RoutingDeps {
  store: QuarantineStore;
}

export type RetryOutcome =
  { kind: "transfer"; requestId: string; run: number } | { kind: "job"; queue: QueueName; jobId: string };

/** A retry that cannot be done now (the transfer is running) or at all (nothing to run again). */
export class RetryRefused extends Error {
  constructor(
    message: string,
    readonly status: 404 | 409,
  ) {
    super(message);
  }
}

const TRANSFER_STAGES: QueueName[] = [QUEUES.transfer, QUEUES.deidentify, QUEUES.send];

/**
 * Run a quarantined object through its stage again, then drop its record (a new failure makes a new
 * one). A transfer's series are re-run as a new run of their request, as the Assign page's Retry does,
 * so the request's record follows; a slide upload is converted again; any other job runs again
 * (BullMQ's own retry while the failed job is still kept, else a new job with the same payload).
 */
export async function retryQuarantined(
  deps: RetryDeps,
  record: QuarantineRecord,
  by: string,
): Promise<RetryOutcome> {
  const outcome =
    record.ids.requestId && TRANSFER_STAGES.includes(record.stage) && !record.ids.uploadId
      ? await rerunTransfer(deps, record.ids.requestId, by)
      : record.job
        ? await rerunJob(deps, record.stage, record.job)
        : record.ids.uploadId
          ? await rerunJob(deps, QUEUES.wsi, { name: QUEUES.wsi, data: { uploadId: record.ids.uploadId } })
          : undefined;
  if (!outcome) throw new RetryRefused("nothing to run again for this record; dismiss it instead", 404);
  await deps.store.remove(record.id);
  return outcome;
}

async function rerunTransfer(deps: RetryDeps, requestId: string, by: string): Promise<RetryOutcome> {
  try {
    const { started } = await retryTransfer(deps, requestId, by);
    return { kind: "transfer", requestId: started.requestId, run: started.run };
  } catch (e) {
    if (e instanceof TransferRetryRefused) throw new RetryRefused(e.message, e.status);
    throw e;
  }
}

/** The study of an archived file: the receiver files it under archive/scp_<StudyInstanceUID>/. */
function archivedStudyOf(data: unknown): string | undefined {
  const file = (data as { path?: unknown } | undefined)?.path;
  const m = typeof file === "string" ? /\/scp_([0-9.]{1,64})\//.exec(file) : null;
  return m?.[1];
}

async function rerunJob(
  deps: RetryDeps,
  stage: QueueName,
  job: { id?: string; name: string; data: unknown },
): Promise<RetryOutcome> {
  const queue = createQueue(stage, deps.redis, deps.cfg.redis.prefix);
  try {
    const kept = job.id ? await queue.getJob(job.id) : undefined;
    if (kept && (await kept.getState()) === "failed") {
      await kept.retry("failed");
      return { kind: "job", queue: stage, jobId: kept.id ?? "" };
    }
    const added = await queue.add(job.name, job.data as never, jobOptions(stage, deps.cfg));
    const study = stage === QUEUES.ingest ? archivedStudyOf(job.data) : undefined;
    // A new ingest job of a study holds its arrival back, as the receiver's own jobs do.
    if (study && added.id)
      await notePendingIngest(deps.redis, deps.cfg.redis.prefix, study, added.id, Date.now());
    return { kind: "job", queue: stage, jobId: added.id ?? "" };
  } finally {
    await queue.close();
  }
}
