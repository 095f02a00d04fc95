import { processAnalysis, type AnalysisDeps, type AnalysisResult } from "../analysis/run.js";
import type { AnalysisQueue } from "../analysis/trigger.js";
import type { AnalysisJob } from "../queues/index.js";
import type { Stage } from "./stage.js";

export interface AnalysisProcessorDeps extends AnalysisDeps {
  /** How often a running job's data is checked for a cancel request (Bull Board: edit data, "cancel": true). */
  cancelPollMs?: number;
  /** The analysis queue, to see cancel requests; without it only the AbortSignal cancels. */
  queue?: AnalysisQueue;
}

/**
 * The `analysis` stage. A run stops on the worker's AbortSignal (Worker.cancelJob), on a cancel
 * request in the job's data, or when the job disappears from Redis (removed in Bull Board). A cancel
 * request is used up by the run it stopped, so that a retry (e.g. from Bull Board) runs again.
 */
export const analysisProcessor: Stage<AnalysisProcessorDeps, AnalysisJob, AnalysisResult> =
  (deps) => async (job, _token, signal) => {
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    if (signal?.aborted) ac.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    let cancelled: AnalysisJob | undefined;
    const poll = setInterval(() => {
      if (!job.id || !deps.queue) return;
      deps.queue.getJob(job.id).then(
        (j) => {
          if (j?.data.cancel === true) cancelled = j.data;
          if (!j || cancelled) ac.abort();
        },
        () => undefined,
      );
    }, deps.cancelPollMs ?? 2000);
    try {
      return await processAnalysis(job, deps, ac.signal);
    } finally {
      clearInterval(poll);
      signal?.removeEventListener("abort", onAbort);
      if (cancelled) {
        const { cancel: _used, ...data } = cancelled;
        await job.updateData(data).catch(() => undefined);
      }
    }
  };
