import type { FlowProducer, Job, JobNode } from "bullmq";
import { QUEUES } from "../queues/index.js";
import type { TransferRecord } from "../registry/transfers.js";

/**
 * The live status of a transfer request, as the Assign page and `fiona transfers` show it: from the registry once a run finished,
 * else from the BullMQ flow of its latest run (`<requestId>-<run>` in the transfer queue, one send job
 * per series, each with a deidentify child).
 */

export type LiveState = "queued" | "deidentifying" | "sending" | "finishing" | "done" | "partial" | "failed";

export interface LiveStatus {
  state: LiveState;
  /** What to show: "queued", "de-identifying 1/3 series", "sending 2/3 series", "done", "failed: …". */
  label: string;
  /** Series in the run (0 when unknown). */
  series: number;
  deidentified: number;
  sent: number;
  /** Send progress of the run in percent (series done count 100 each), while sending. */
  percent?: number;
  /** Why a send is waiting for its next attempt (destination down, …). */
  retrying?: string;
  /** Failure reason (failed or partial). */
  reason?: string;
  /** Whether a retry makes sense now (the latest run has finished or died). */
  retryable: boolean;
}

const MAX_SERIES = 10_000;

/** The registry joins per-series errors with "; "; the same reason for every series is shown once. */
function uniqueReasons(error: string | undefined): string | undefined {
  if (!error) return undefined;
  return [
    ...new Set(
      error
        .split("; ")
        .map((e) => e.trim())
        .filter(Boolean),
    ),
  ].join("; ");
}

function finished(rec: TransferRecord): LiveStatus {
  const counts = { series: 0, deidentified: 0, sent: 0 };
  const error = uniqueReasons(rec.error);
  switch (rec.status) {
    case "done":
      return { state: "done", label: "done", ...counts, retryable: true };
    case "partial":
      return {
        state: "partial",
        label: `done with errors: ${rec.filesFailed} file${rec.filesFailed === 1 ? "" : "s"} not sent`,
        ...counts,
        ...(error ? { reason: error } : {}),
        retryable: true,
      };
    default:
      return {
        state: "failed",
        label: `failed${error ? `: ${error}` : ""}`,
        ...counts,
        ...(error ? { reason: error } : {}),
        retryable: true,
      };
  }
}

async function state(job: Job): Promise<string> {
  try {
    return await job.getState();
  } catch {
    return "unknown";
  }
}

function firstLine(s: string | undefined): string | undefined {
  const line = s?.split("\n")[0]?.trim();
  return line ? line.slice(0, 300) : undefined;
}

export async function liveStatus(flow: FlowProducer, rec: TransferRecord): Promise<LiveStatus> {
  if (rec.status !== "queued") return finished(rec);
  let tree: JobNode | undefined;
  try {
    tree = await flow.getFlow({
      id: `${rec.requestId}-${rec.runs}`,
      queueName: QUEUES.transfer,
      depth: 3,
      maxChildren: MAX_SERIES,
    });
  } catch {
    tree = undefined;
  }
  // No flow (its jobs were removed, or the run is being created this instant): let the user run it again.
  if (!tree)
    return { state: "queued", label: "queued", series: 0, deidentified: 0, sent: 0, retryable: true };

  const parentState = await state(tree.job);
  const sends = (tree.children ?? []).filter((c) => c?.job?.queueName === QUEUES.send);
  const series = sends.length;
  if (parentState === "failed") {
    const reason = firstLine(tree.job.failedReason) ?? "the transfer job failed";
    return {
      state: "failed",
      label: `failed: ${reason}`,
      series,
      deidentified: 0,
      sent: 0,
      reason,
      retryable: true,
    };
  }

  const rows = await Promise.all(
    sends.map(async (node) => {
      const deid = (node.children ?? []).find((c) => c?.job?.queueName === QUEUES.deidentify);
      const [sendState, deidState] = await Promise.all([
        state(node.job),
        deid ? state(deid.job) : Promise.resolve("completed"),
      ]);
      return { node, sendState, deidState, deidJob: deid?.job };
    }),
  );
  const deidentified = rows.filter((r) => r.deidState === "completed").length;
  const deidFailed = rows.filter((r) => r.deidState === "failed").length;
  const sendsFinished = rows.filter((r) => r.sendState === "completed" || r.sendState === "failed").length;
  const deidActive = rows.some((r) => r.deidState === "active");
  const retrying = rows
    .filter((r) => r.sendState === "delayed" || (r.sendState === "waiting" && r.node.job.attemptsMade > 0))
    .map((r) => firstLine(r.node.job.failedReason))
    .find((x) => x !== undefined);
  const base = { series, deidentified, sent: sendsFinished, retryable: false };

  if (parentState === "completed") return { state: "finishing", label: "recording the result", ...base };
  if (series === 0) return { state: "queued", label: "queued", ...base };
  if (deidentified + deidFailed < series) {
    if (deidentified === 0 && !deidActive && deidFailed === 0)
      return { state: "queued", label: "queued", ...base };
    return { state: "deidentifying", label: `de-identifying ${deidentified}/${series} series`, ...base };
  }
  if (sendsFinished < series) {
    const progress = rows.map((r) => {
      if (r.sendState === "completed" || r.sendState === "failed") return 100;
      const p = r.node.job.progress;
      return typeof p === "number" && r.sendState === "active" ? Math.max(0, Math.min(100, p)) : 0;
    });
    const percent = Math.round(progress.reduce((a, b) => a + b, 0) / series);
    return {
      state: "sending",
      label: `sending ${sendsFinished}/${series} series`,
      ...base,
      percent,
      ...(retrying ? { retrying } : {}),
    };
  }
  return { state: "finishing", label: "recording the result", ...base };
}
