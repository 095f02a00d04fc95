import type { Logger } from "../log.js";
import type { SitePaths } from "../paths.js";
import { readStudySummaries } from "../ingest/study-summaries.js";
import { emitAutomation, type AutomationSink } from "./emit.js";

/**
 * study-arrived: one trigger per project the study is routed to (or one without a project), with the
 * AE titles of its first series. A failure is logged, not thrown: the stage's own work is done.
 */
export async function emitStudyArrived(
  sink: AutomationSink,
  deps: { paths: SitePaths; log: Logger },
  studyInstanceUid: string,
  projects: readonly string[],
  arrival: number,
): Promise<number> {
  if (!sink.cfg.automation.subscriptions.some((s) => s.trigger.type === "study-arrived")) return 0;
  try {
    const series = await readStudySummaries(deps.paths, studyInstanceUid);
    const conn = series.find((s) => s.summary.IncomingConnection)?.summary.IncomingConnection;
    const base = {
      type: "study-arrived" as const,
      studyInstanceUid,
      calledAe: conn?.AETitleCalled.trim() ?? "",
      callingAe: conn?.AETitleCaller.trim() ?? "",
    };
    const triggers = projects.length
      ? [...new Set(projects)].map((project) => ({ ...base, project }))
      : [base];
    let n = 0;
    for (const t of triggers) n += await emitAutomation(sink.cfg, sink.queue, t, String(arrival));
    return n;
  } catch (e) {
    deps.log.warn({ studyInstanceUid, err: (e as Error).message }, "automation not triggered");
    return 0;
  }
}
