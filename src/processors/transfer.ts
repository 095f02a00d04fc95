import type { FlowProducer, Job, Queue } from "bullmq";
import { emitAutomation, type AutomationSink } from "../automation/emit.js";
import type { Logger } from "../log.js";
import type { RedcapPushJob, TransferJob } from "../queues/index.js";
import type { RunResult, TransferRegistry } from "../registry/transfers.js";
import type { QuarantineStore } from "../quarantine/store.js";
import type { SendResult } from "../transfer/stage.js";
import { runJobIntervals, stageTimings, type StageTimings } from "../transfer/stage-timings.js";
import type { Stage } from "./stage.js";

export interface TransferDepsP {
  transfers: TransferRegistry;
  log: Logger;
  /** Set when REDCap is configured: the result is written back to the request row in Incoming. */
  redcapPush?: Queue<RedcapPushJob>;
  /** Set by the workers: transfer-done / transfer-failed automation subscriptions fire. */
  automation?: AutomationSink;
  /** Where series refused by de-identification or by the destination are recorded. */
  quarantine?: QuarantineStore;
  /** Called with every recorded result (the wsi stage settles its upload here). */
  afterRun?: (data: TransferJob, result: RunResult) => Promise<void>;
  /** Set by the workers: the run's jobs are read back from its flow for the stage timings. */
  flow?: FlowProducer;
  /** Called with every run's stage timings (the workers feed the /metrics histogram). */
  onStageTimings?: (t: StageTimings) => Promise<void>;
}

/** The run's jobs, for its stage timings; a run is recorded without them when they cannot be read back. */
async function jobIntervals(job: Job<TransferJob>, deps: TransferDepsP) {
  if (!deps.flow) return undefined;
  try {
    return await runJobIntervals(deps.flow, job);
  } catch (e) {
    deps.log.warn({ requestId: job.data.requestId, err: (e as Error).message }, "stage timings not read");
    return undefined;
  }
}

/** Parent of a transfer run: every series job has finished (or failed for good); record the result. */
async function processTransfer(job: Job<TransferJob>, deps: TransferDepsP): Promise<RunResult> {
  const sends = Object.values(await job.getChildrenValues<SendResult>());
  const failures = Object.values(await job.getIgnoredChildrenFailures());
  const sum = (f: (s: SendResult) => number) => sends.reduce((n, s) => n + f(s), 0);
  const filesSent = sum((s) => s.sent + s.skipped);
  const filesFailed = sum((s) => s.failed + s.refused);
  const errors = [...failures, ...sends.map((s) => s.error).filter((e): e is string => !!e)];
  const status: RunResult["status"] =
    errors.length === 0 && filesFailed === 0 ? "done" : filesSent > 0 ? "partial" : "failed";
  const intervals = await jobIntervals(job, deps);
  const now = Date.now();
  const stages = intervals && stageTimings(job.timestamp, now, intervals.deidentify, intervals.send);
  const result: RunResult = {
    status,
    filesSent,
    filesFailed,
    filesDropped: sum((s) => s.dropped),
    durationMs: now - job.timestamp,
    ...(stages ? { stages } : {}),
    ...(errors.length ? { error: errors.slice(0, 3).join("; ").slice(0, 1000) } : {}),
    ...(sends.find((s) => s.pseudoStudyInstanceUid)
      ? { pseudoStudyInstanceUid: sends.find((s) => s.pseudoStudyInstanceUid)!.pseudoStudyInstanceUid }
      : {}),
  };
  await deps.transfers.finishRun(job.data.requestId, result);
  if (stages && deps.onStageTimings)
    await deps
      .onStageTimings(stages)
      .catch((e: unknown) =>
        deps.log.warn(
          { requestId: job.data.requestId, err: (e as Error).message },
          "stage metrics not recorded",
        ),
      );
  await quarantineRefusals(deps, job.data, sends, status).catch((e: unknown) =>
    deps.log.error({ requestId: job.data.requestId, err: (e as Error).message }, "quarantine not updated"),
  );
  // The result is recorded: a failing hook is logged rather than re-running the whole record.
  await deps
    .afterRun?.(job.data, result)
    .catch((e: unknown) =>
      deps.log.warn({ requestId: job.data.requestId, err: (e as Error).message }, "after-run hook failed"),
    );
  deps.log.info(
    {
      requestId: job.data.requestId,
      run: job.data.run,
      studyInstanceUid: job.data.studyInstanceUid,
      project: job.data.project,
      ...result,
    },
    "transfer finished",
  );
  if (deps.redcapPush)
    await deps.redcapPush.add(
      "transfer-result",
      {
        redcapProject: "incoming",
        kind: "transfer-result",
        studyInstanceUid: job.data.studyInstanceUid,
        requestId: job.data.requestId,
        run: job.data.run,
      },
      { jobId: `result-${job.data.requestId}-${job.data.run}` },
    );
  if (deps.automation) {
    const { requestId, project, studyInstanceUid, run } = job.data;
    const trigger =
      status === "done"
        ? { type: "transfer-done" as const, requestId, project, studyInstanceUid }
        : {
            type: "transfer-failed" as const,
            requestId,
            project,
            studyInstanceUid,
            ...(result.error ? { error: result.error } : {}),
          };
    await emitAutomation(deps.automation.cfg, deps.automation.queue, trigger, String(run)).catch(
      (e: unknown) => deps.log.warn({ requestId, err: (e as Error).message }, "automation not triggered"),
    );
  }
  return result;
}

/**
 * Series whose files de-identification refused or the destination rejected go to the quarantine of
 * that stage (a retry re-runs the request); a run that succeeded resolves what earlier runs left.
 */
async function quarantineRefusals(
  deps: TransferDepsP,
  data: TransferJob,
  sends: SendResult[],
  status: RunResult["status"],
): Promise<void> {
  const q = deps.quarantine;
  if (!q) return;
  if (status === "done") return void (await q.resolveRequest(data.requestId));
  const ids = {
    requestId: data.requestId,
    run: data.run,
    studyInstanceUid: data.studyInstanceUid,
    project: data.project,
    participant: data.participant,
    ...(data.uploadId ? { uploadId: data.uploadId } : {}),
  };
  for (const s of sends) {
    const series = { ...ids, seriesInstanceUid: s.seriesInstanceUid };
    if (s.refused > 0)
      await q.add({
        stage: "deidentify",
        reason: s.refusedReason ?? "refused by de-identification",
        ids: series,
        files: s.refused,
      });
    if (s.failed > 0)
      await q.add({
        stage: "send",
        reason: s.error ?? "rejected by the destination",
        ids: series,
        files: s.failed,
      });
  }
}

export const transferProcessor: Stage<TransferDepsP, TransferJob, RunResult> = (deps) => (job) =>
  processTransfer(job, deps);
