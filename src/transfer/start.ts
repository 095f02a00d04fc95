import { promises as fs } from "node:fs";
import type { FlowJob, FlowProducer } from "bullmq";
import type { FionaConfig } from "../config/schema.js";
import { isPathSafeUid } from "../dicom/uid.js";
import type { SitePaths } from "../paths.js";
import { DEFAULT_JOB_OPTIONS, QUEUES, type SeriesTransferJob, type TransferJob } from "../queues/index.js";
import type { TransferRegistry } from "../registry/transfers.js";
import { InvalidRequestError, requestId, validateRequest, type TransferRequest } from "./request.js";

export interface TransferDeps {
  cfg: FionaConfig;
  paths: SitePaths;
  flow: FlowProducer;
  transfers: TransferRegistry;
}

export interface StartedTransfer {
  requestId: string;
  run: number;
  series: number;
}

/** Series of a study on disk (raw/<Study>/<Series>/). */
export async function studySeries(paths: SitePaths, studyUid: string): Promise<string[]> {
  const entries = await fs.readdir(paths.rawStudyDir(studyUid), { withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isDirectory() && isPathSafeUid(e.name))
    .map((e) => e.name)
    .sort();
}

/**
 * Start one run of a transfer request as a BullMQ flow: for every series a deidentify job feeding a
 * send job, all under a transfer job that records the result. A repeated request is the same request
 * (same id); its new run sends only what the destination has not accepted yet.
 */
export async function startTransfer(deps: TransferDeps, r: TransferRequest): Promise<StartedTransfer> {
  validateRequest(r, deps.cfg.projects);
  const series = await studySeries(deps.paths, r.studyInstanceUid);
  if (series.length === 0) throw new InvalidRequestError("no images of this study are on disk");
  const id = requestId(r);
  const counts = await Promise.all(
    series.map(async (s) => (await fs.readdir(deps.paths.rawSeriesDir(r.studyInstanceUid, s))).length),
  );
  const run = await deps.transfers.startRun(
    id,
    r,
    counts.reduce((a, b) => a + b, 0),
  );
  const base: TransferJob = {
    requestId: id,
    run,
    studyInstanceUid: r.studyInstanceUid,
    project: r.project,
    participant: r.participant,
    ...(r.event !== undefined ? { event: r.event } : {}),
  };
  const { attempts, backoffMs } = deps.cfg.transfer;
  const children: FlowJob[] = series.map((seriesInstanceUid) => {
    const data: SeriesTransferJob = { ...base, seriesInstanceUid };
    return {
      name: QUEUES.send,
      queueName: QUEUES.send,
      data,
      opts: {
        ...DEFAULT_JOB_OPTIONS.send,
        jobId: `${id}-${run}-${seriesInstanceUid}-send`,
        attempts,
        backoff: { type: "exponential", delay: backoffMs, jitter: 0.5 },
        // A series that fails for good is recorded by the parent instead of blocking it.
        ignoreDependencyOnFailure: true,
      },
      children: [
        {
          name: QUEUES.deidentify,
          queueName: QUEUES.deidentify,
          data,
          opts: {
            ...DEFAULT_JOB_OPTIONS.deidentify,
            jobId: `${id}-${run}-${seriesInstanceUid}-deid`,
            failParentOnFailure: true,
          },
        },
      ],
    };
  });
  await deps.flow.add({
    name: QUEUES.transfer,
    queueName: QUEUES.transfer,
    data: base,
    opts: { ...DEFAULT_JOB_OPTIONS.transfer, jobId: `${id}-${run}` },
    children,
  });
  return { requestId: id, run, series: series.length };
}
