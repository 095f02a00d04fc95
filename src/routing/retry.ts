/**
 * Retrying a transfer request: a new run of it, whichever door asks (the Assign page's Retry,
 * `fiona retry`, a retry in Bull Board), so that the request's record follows the new run.
 */
import { promises as fs } from "node:fs";
import type { SeriesTransferJob, TransferJob } from "../queues/index.js";
import type { TransferRecord } from "../registry/transfers.js";
import { liveStatus } from "../transfer/live-status.js";
import type { TransferRequest } from "../transfer/request.js";
import { startPreparedTransfer } from "../transfer/start.js";
import { assignStudy, type AssignedTransfer } from "./assign.js";
import type { RoutingDeps } from "./deps.js";

/** A retry that cannot be done: no such request (404), or its latest run is still going (409). */
export class TransferRetryRefused extends Error {
  constructor(
    message: string,
    readonly status: 404 | 409,
  ) {
    super(message);
  }
}

export interface RetriedTransfer {
  request: TransferRequest;
  started: AssignedTransfer;
}

const requestOf = (t: TransferRecord, requestedBy: string): TransferRequest => ({
  studyInstanceUid: t.studyInstanceUid,
  project: t.project,
  participant: t.participant,
  ...(t.event ? { event: t.event } : {}),
  requestedBy,
});

async function retryable(deps: RoutingDeps, requestId: string): Promise<TransferRecord> {
  const t = await deps.transfers.get(requestId);
  if (!t) throw new TransferRetryRefused(`no transfer request ${requestId}`, 404);
  if (!(await liveStatus(deps.flow, t)).retryable)
    throw new TransferRetryRefused(
      "this transfer is running; wait for it to finish before sending it again",
      409,
    );
  return t;
}

/**
 * The Assign page's Retry: a new run of the request through assignStudy (auto-ID reservation,
 * re-assignment check), refused while its latest run is still going. It sends only what the
 * destination has not accepted yet. InvalidRequestError and ReassignmentRefused pass through.
 */
export async function retryTransfer(
  deps: RoutingDeps,
  requestId: string,
  requestedBy: string,
): Promise<RetriedTransfer> {
  const request = requestOf(await retryable(deps, requestId), requestedBy);
  return { request, started: await assignStudy(deps, request) };
}

/**
 * Retry the request a job of a transfer run belongs to (its data: see src/queues). A converted slide
 * has no images under raw/: its series is sent again from the outbox, as its conversion first did.
 */
export async function retryTransferOfJob(
  deps: RoutingDeps,
  data: TransferJob & Partial<Pick<SeriesTransferJob, "seriesInstanceUid">>,
  requestedBy: string,
): Promise<RetriedTransfer> {
  if (!data.uploadId) return retryTransfer(deps, data.requestId, requestedBy);
  if (!data.seriesInstanceUid)
    throw new TransferRetryRefused("retry the slide's send job rather than its transfer job", 409);
  const request = requestOf(await retryable(deps, data.requestId), requestedBy);
  const dir = deps.paths.outboxSeries(data.requestId, data.seriesInstanceUid);
  const files = (await fs.readdir(dir).catch(() => [])).filter((f) => f.endsWith(".dcm")).length;
  if (files === 0)
    throw new TransferRetryRefused("the converted slide is no longer in the outbox; retry its wsi job", 409);
  const started = await startPreparedTransfer(deps, request, data.seriesInstanceUid, files, data.uploadId);
  return { request, started };
}
