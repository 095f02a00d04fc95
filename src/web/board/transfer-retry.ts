/**
 * A retry in Bull Board of a job of a transfer run (queues transfer, deidentify, send) becomes a new
 * run of its transfer request, as the Assign page's Retry: BullMQ's own retry would run the job again
 * under a parent that has already recorded the run's result, so the request would keep it. The retried
 * run's failed jobs then leave the failed list, with their quarantine records (the new run has jobs and,
 * should it fail, records of its own). Bull Board gets the answer its own retry gives; other retries, and
 * jobs whose request FIONA has no record of, go on to Bull Board. Runs after ./guard.ts, which checked
 * the role and the job's project; what happened is added to the guard's audit entry.
 */
import type { Job, JobNode, Queue } from "bullmq";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { Logger } from "../../log.js";
import { jobRecordId } from "../../quarantine/record.js";
import type { QuarantineStore } from "../../quarantine/store.js";
import { QUEUES, type SeriesTransferJob, type TransferJob } from "../../queues/index.js";
import type { AuditInput } from "../../registry/audit.js";
import type { RoutingDeps } from "../../routing/deps.js";
import { retryTransferOfJob, TransferRetryRefused, type RetriedTransfer } from "../../routing/retry.js";
import { ReassignmentRefused } from "../../transfer/reassign.js";
import { InvalidRequestError } from "../../transfer/request.js";
import { principalOf } from "../api/principal.js";
import { boardAction } from "./actions.js";
import { BOARD_AUDIT } from "./guard.js";

export interface BoardTransferRetryDeps {
  queues: ReadonlyMap<string, Queue>;
  routing: RoutingDeps;
  quarantine: QuarantineStore;
  logger: Logger;
}

type RunJobData = TransferJob & Partial<Pick<SeriesTransferJob, "seriesInstanceUid">>;

const TRANSFER_QUEUES = new Set<string>([QUEUES.transfer, QUEUES.deidentify, QUEUES.send]);
const RETRIABLE = new Set(["failed", "completed"]);
const RETRY_ALL = /^\/api\/queues\/[^/]+\/retry\/([^/]+)\/?$/i;
/** Jobs one retry-all looks at; Bull Board's retention keeps fewer. */
const MAX_RETRY_ALL = 10_000;

/** Bull Board's own error bodies: a translation key its UI shows. */
const boardError = (key: string, options?: Record<string, string>) => ({
  error: { key, ...(options ? { options } : {}) },
});

function runData(job: Job): RunJobData | undefined {
  const d = job.data as Partial<RunJobData> | undefined;
  return typeof d?.requestId === "string" && typeof d.run === "number" ? (d as RunJobData) : undefined;
}

/** Why a retry was refused, as an HTTP status and message; undefined for unexpected errors. */
function refusal(e: unknown): { status: number; message: string } | undefined {
  if (e instanceof TransferRetryRefused) return { status: e.status, message: e.message };
  if (e instanceof ReassignmentRefused) return { status: 409, message: e.message };
  if (e instanceof InvalidRequestError) return { status: 400, message: e.message };
  return undefined;
}

function flatten(node: JobNode | undefined): Job[] {
  return node ? [node.job, ...(node.children ?? []).flatMap(flatten)] : [];
}

export function boardTransferRetries(deps: BoardTransferRetryDeps): RequestHandler {
  const { queues, routing, quarantine, logger } = deps;

  /** The slide series of a slide's transfer parent (its one send child). */
  async function withSeries(job: Job, data: RunJobData): Promise<RunJobData> {
    if (!data.uploadId || data.seriesInstanceUid || job.queueName !== QUEUES.transfer) return data;
    const tree = await routing.flow.getFlow({ id: job.id!, queueName: QUEUES.transfer, depth: 1 });
    const send = runData(tree.children?.find((c) => c.job.queueName === QUEUES.send)?.job ?? job);
    return send?.seriesInstanceUid ? { ...data, seriesInstanceUid: send.seriesInstanceUid } : data;
  }

  /** Remove the failed jobs of a run that a new run replaces, and their quarantine records. */
  async function supersede(data: RunJobData, retried: Job): Promise<void> {
    const tree = await routing.flow
      .getFlow({
        id: `${data.requestId}-${data.run}`,
        queueName: QUEUES.transfer,
        depth: 3,
        maxChildren: 10_000,
      })
      .catch(() => undefined);
    const jobs = [retried, ...flatten(tree).filter((j) => j.id !== retried.id)];
    const failed = [];
    for (const j of jobs) if ((await j.getState().catch(() => "unknown")) === "failed") failed.push(j);
    for (const j of failed) {
      await quarantine.remove(jobRecordId(j.queueName, j.id!));
      // Removing a send also removes its deidentify child: that one is gone already.
      await j.remove().catch(() => undefined);
    }
  }

  async function rerun(job: Job, user: string): Promise<RetriedTransfer> {
    const data = await withSeries(job, runData(job)!);
    const retried = await retryTransferOfJob(routing, data, user);
    logger.info(
      { queue: job.queueName, jobId: job.id, requestId: data.requestId, run: retried.started.run },
      "bull board retry: transfer run again",
    );
    return retried;
  }

  async function retryOne(res: Response, next: NextFunction, queue: Queue, jobId: string) {
    const job = await queue.getJob(jobId);
    if (!job) return void res.status(404).json(boardError("ERRORS.JOB_NOT_FOUND"));
    const state = await job.getState();
    if (!RETRIABLE.has(state))
      return void res.status(400).json(boardError("ERRORS.JOB_NOT_RETRIABLE", { state }));
    const data = runData(job);
    if (!data || !(await routing.transfers.get(data.requestId))) return next();
    let retried: RetriedTransfer;
    try {
      retried = await rerun(job, principalOf(res).user.name);
    } catch (e) {
      const r = refusal(e);
      if (!r) throw e;
      return void res.status(r.status).json({ error: r.message });
    }
    if (state === "failed") await supersede(data, job);
    const { request, started } = retried;
    const audit: Partial<AuditInput> = {
      study: request.studyInstanceUid,
      participant: request.participant,
      ...(request.event ? { event: request.event } : {}),
      requestId: started.requestId,
      run: started.run,
      detail: "a new run of its transfer request",
    };
    res.locals[BOARD_AUDIT] = audit;
    res.status(204).end();
  }

  /** Every job of the queue in `status`: each transfer request among them is run again once. */
  async function retryAll(res: Response, queue: Queue, status: string) {
    if (!RETRIABLE.has(status))
      return void res.status(400).json(boardError("ERRORS.STATUS_NOT_RETRIABLE", { status }));
    const jobs = (await queue.getJobs([status as "failed" | "completed"], 0, MAX_RETRY_ALL - 1)).filter(
      (j): j is Job => !!j,
    );
    const groups = new Map<string, Job[]>();
    for (const job of jobs) {
      const d = runData(job);
      const key = d ? `${d.requestId}\0${d.uploadId ? (d.seriesInstanceUid ?? "") : ""}` : `job\0${job.id}`;
      groups.set(key, [...(groups.get(key) ?? []), job]);
    }
    let retried = 0;
    let requests = 0;
    const user = principalOf(res).user.name;
    for (const group of groups.values()) {
      const first = group[0]!;
      const data = runData(first);
      try {
        if (data && (await routing.transfers.get(data.requestId))) {
          await rerun(first, user);
          requests++;
          if (status === "failed") for (const job of group) await supersede(runData(job)!, job);
        } else {
          // What FIONA has no record of is retried as Bull Board would.
          for (const job of group) await job.retry(status as "failed" | "completed");
        }
        retried += group.length;
      } catch (e) {
        if (!refusal(e)) throw e;
      }
    }
    const skipped = jobs.length - retried;
    res.locals[BOARD_AUDIT] = {
      detail: `jobs ${status}: ${requests} transfer requests run again, ${skipped} jobs skipped`,
    } satisfies Partial<AuditInput>;
    res.status(200).json({ retried, skipped });
  }

  return async (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== "PUT") return next();
    const action = boardAction(req.method, req.path);
    const queue = action.queue && TRANSFER_QUEUES.has(action.queue) ? queues.get(action.queue) : undefined;
    if (!queue) return next();
    if (action.action === "retry" && action.jobId) return retryOne(res, next, queue, action.jobId);
    const all = action.action === "retry-all" ? RETRY_ALL.exec(req.path) : null;
    if (all) return retryAll(res, queue, all[1]!);
    next();
  };
}
