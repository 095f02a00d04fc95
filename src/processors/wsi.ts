import { rename } from "node:fs/promises";
import path from "node:path";
import { UnrecoverableError, type Job } from "bullmq";
import { assertPathSafeUid } from "../dicom/uid.js";
import { diskFullOf } from "../fs/disk-full.js";
import type { Logger } from "../log.js";
import type { SitePaths } from "../paths.js";
import type { WsiJob } from "../queues/index.js";
import {
  InvalidRequestError,
  requestId,
  validateRequest,
  type TransferRequest,
} from "../transfer/request.js";
import { startPreparedTransfer, type StartedTransfer, type TransferDeps } from "../transfer/start.js";
import { convertSlide, WsiInputError } from "../wsi/convert.js";
import { slideDataset } from "../wsi/identity.js";
import type { UploadRecord, UploadStore } from "../wsi/uploads.js";
import { siteSecret } from "../transfer/stage.js";
import type { Stage } from "./stage.js";

export interface WsiDeps extends TransferDeps {
  paths: SitePaths;
  store: UploadStore;
  log: Logger;
}

export interface WsiResult extends StartedTransfer {
  instances: number;
}

async function fail(store: UploadStore, record: UploadRecord, message: string): Promise<never> {
  record.state = "failed";
  record.error = message;
  await store.save(record);
  throw new UnrecoverableError(message);
}

/**
 * Convert one complete upload into the outbox as a pseudonymized WSM series and start its transfer
 * (a send job without deidentify child). Bad input fails the upload for good and keeps the file.
 */
async function processWsi(job: Job<WsiJob>, deps: WsiDeps): Promise<WsiResult> {
  const { cfg, store } = deps;
  const record = await store.get(job.data.uploadId);
  if (!record) throw new UnrecoverableError(`upload ${job.data.uploadId} not found`);
  if (record.state === "receiving" || record.state === "sent")
    throw new UnrecoverableError(`upload ${record.id} is ${record.state}`);
  const dataset = slideDataset({
    project: record.project,
    participant: record.participant,
    ...(record.event !== undefined ? { event: record.event } : {}),
    uploadId: record.id,
    metadata: record.metadata,
    completedAt: new Date(record.completedAt ?? record.createdAt),
    studyPer: cfg.wsi.studyPer,
    siteSecret: siteSecret(cfg),
  });
  const request: TransferRequest = {
    studyInstanceUid: dataset.studyInstanceUid,
    project: record.project,
    participant: record.participant,
    ...(record.event !== undefined ? { event: record.event } : {}),
    requestedBy: "wsi",
  };
  try {
    validateRequest(request, cfg.projects);
  } catch (e) {
    if (e instanceof InvalidRequestError) return fail(store, record, e.message);
    throw e;
  }
  record.state = "converting";
  delete record.error;
  await store.save(record);

  const outDir = deps.paths.outboxSeries(requestId(request), dataset.seriesInstanceUid);
  const log = deps.log.child({
    jobId: job.id,
    uploadId: record.id,
    seriesInstanceUid: dataset.seriesInstanceUid,
  });
  let converted;
  try {
    converted = await convertSlide(store.slidePath(record), outDir, dataset, {
      keepThumbnail: cfg.wsi.keepThumbnail,
    });
  } catch (e) {
    if (e instanceof WsiInputError) {
      log.warn({ err: e.message }, "slide refused");
      return fail(store, record, e.message);
    }
    throw e;
  }
  // The send stage names instances by file (<SOPInstanceUID>.dcm) to skip what was accepted before.
  for (const i of converted.instances) {
    const name = `${assertPathSafeUid(i.sopInstanceUid, "SOPInstanceUID")}.dcm`;
    await rename(i.path, path.join(outDir, name));
  }
  const started = await startPreparedTransfer(
    deps,
    request,
    dataset.seriesInstanceUid,
    converted.instances.length,
    record.id,
  );
  record.requestId = started.requestId;
  await store.save(record);
  log.info(
    { requestId: started.requestId, run: started.run, instances: converted.instances.length },
    "slide converted",
  );
  return { ...started, instances: converted.instances.length };
}

/**
 * BullMQ gives up on the job when this attempt fails (also true of a job retried after it gave up);
 * a full disk only delays it (src/roles/disk-full-retry.ts).
 */
const lastAttempt = (job: Job, e: unknown) =>
  diskFullOf(e) === undefined &&
  (e instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1));

/** A conversion that fails for good for any other reason settles its upload too, so a retry can follow. */
export const wsiProcessor: Stage<WsiDeps, WsiJob, WsiResult> = (deps) => async (job) => {
  try {
    return await processWsi(job, deps);
  } catch (e) {
    const record = lastAttempt(job, e)
      ? await deps.store.get(job.data.uploadId).catch(() => undefined)
      : undefined;
    if (record?.state === "converting") {
      record.state = "failed";
      record.error = (e as Error).message;
      await deps.store.save(record);
    }
    throw e;
  }
};
