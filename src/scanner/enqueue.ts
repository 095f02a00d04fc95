import { QUEUES, type ScannerPullJob, type TypedQueue } from "../queues/index.js";

/** One pull per study at a time: BullMQ keeps the deduplication id until the job completes or fails. */
export const pullDedupId = (studyInstanceUid: string) => `pull:${studyInstanceUid}`;

/**
 * Start a pull of the study unless one is running; returns the id of the job that pulls it (the
 * running one when deduplicated).
 */
export async function enqueuePull(
  queue: TypedQueue<"scanner-pull">,
  pull: Pick<ScannerPullJob, "studyInstanceUid" | "scanner" | "trigger">,
  now = new Date(),
): Promise<string> {
  const job = await queue.add(
    QUEUES.scannerPull,
    { ...pull, startedAt: now.toISOString() },
    { deduplication: { id: pullDedupId(pull.studyInstanceUid) } },
  );
  return job.id!;
}

/** Run a waiting re-check of the study's pull now (after an MPPS step ended); false when none waits. */
export async function recheckNow(
  queue: TypedQueue<"scanner-pull">,
  studyInstanceUid: string,
): Promise<boolean> {
  const id = await queue.getDeduplicationJobId(pullDedupId(studyInstanceUid));
  const job = id ? await queue.getJob(id) : undefined;
  if (!job || !(await job.isDelayed())) return false;
  await job.promote();
  return true;
}
