import type { FlowJob, FlowProducer } from "bullmq";
import type { FionaConfig } from "../config/schema.js";
import { studyFileCount, studySeries } from "../ingest/study-files.js";
import type { SitePaths } from "../paths.js";
import {
  DEFAULT_JOB_OPTIONS,
  QUEUES,
  jobOptions,
  type SeriesTransferJob,
  type TransferJob,
} from "../queues/index.js";
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
  const files = await studyFileCount(deps.paths, r.studyInstanceUid, series);
  const run = await deps.transfers.startRun(id, r, files);
  const base = runJob(r, id, run);
  const children: FlowJob[] = series.map((seriesInstanceUid) => {
    const data: SeriesTransferJob = { ...base, seriesInstanceUid };
    return {
      ...sendJob(deps.cfg, data),
      children: [
        {
          name: QUEUES.deidentify,
          queueName: QUEUES.deidentify,
          data,
          opts: {
            ...jobOptions(QUEUES.deidentify, deps.cfg),
            jobId: `${id}-${run}-${seriesInstanceUid}-deid`,
            failParentOnFailure: true,
          },
        },
      ],
    };
  });
  await deps.flow.add(transferFlow(base, children));
  return { requestId: id, run, series: series.length };
}

/**
 * Start one run for a series that is already pseudonymized in the outbox (a converted slide): the
 * same transfer parent with one send child and no deidentify child.
 */
export async function startPreparedTransfer(
  deps: TransferDeps,
  r: TransferRequest,
  seriesInstanceUid: string,
  files: number,
  uploadId?: string,
): Promise<StartedTransfer> {
  validateRequest(r, deps.cfg.projects);
  const id = requestId(r);
  const run = await deps.transfers.startRun(id, r, files);
  const base = runJob(r, id, run, uploadId);
  const data: SeriesTransferJob = { ...base, seriesInstanceUid, prepared: true };
  await deps.flow.add(transferFlow(base, [sendJob(deps.cfg, data)]));
  return { requestId: id, run, series: 1 };
}

/** The payload of one run's transfer parent (identifiers only; the participant is a pseudonym). */
function runJob(r: TransferRequest, requestId: string, run: number, uploadId?: string): TransferJob {
  return {
    requestId,
    run,
    studyInstanceUid: r.studyInstanceUid,
    project: r.project,
    participant: r.participant,
    ...(r.event !== undefined ? { event: r.event } : {}),
    ...(uploadId !== undefined ? { uploadId } : {}),
  };
}

function sendJob(cfg: FionaConfig, data: SeriesTransferJob): FlowJob {
  return {
    name: QUEUES.send,
    queueName: QUEUES.send,
    data,
    opts: {
      ...jobOptions(QUEUES.send, cfg),
      jobId: `${data.requestId}-${data.run}-${data.seriesInstanceUid}-send`,
      // A series that fails for good is recorded by the parent instead of blocking it.
      ignoreDependencyOnFailure: true,
    },
  };
}

function transferFlow(base: TransferJob, children: FlowJob[]): FlowJob {
  return {
    name: QUEUES.transfer,
    queueName: QUEUES.transfer,
    data: base,
    opts: { ...DEFAULT_JOB_OPTIONS.transfer, jobId: `${base.requestId}-${base.run}` },
    children,
  };
}
