import { createHash } from "node:crypto";
import type { Queue } from "bullmq";
import type { FionaConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import type { SitePaths } from "../paths.js";
import type { AnalysisJob } from "../queues/index.js";
import type { TransferRegistry } from "../registry/transfers.js";
import { validateRequest } from "../transfer/request.js";
import { jobDefinitionOrUndefined } from "./definitions.js";
import { selectSeries, studySeries } from "./select.js";

export type AnalysisQueue = Queue<AnalysisJob, unknown, string>;

/** BullMQ job id of an analysis run: one per job, study, project, participant and number of images. */
function analysisJobId(d: AnalysisJob, images: number | string): string {
  const h = createHash("sha256")
    .update([d.job, d.studyInstanceUid, d.project, d.participant, d.event ?? ""].join("\u0000"))
    .digest("hex")
    .slice(0, 24);
  return `analysis-${d.job}-${h}-${images}`.replace(/[^A-Za-z0-9_.-]/g, "_");
}

/** Queue a manual run (fiona analyze). The project, participant and event are checked as for a transfer. */
export async function enqueueAnalysis(
  cfg: FionaConfig,
  queue: AnalysisQueue,
  d: Omit<AnalysisJob, "trigger" | "cancel"> & { trigger?: AnalysisJob["trigger"] },
): Promise<string> {
  if (!jobDefinitionOrUndefined(cfg, d.job))
    throw new Error(
      `analysis job ${d.job} is not configured (known: ${cfg.analysis.jobs.map((j) => j.name).join(", ") || "none"})`,
    );
  validateRequest(
    {
      studyInstanceUid: d.studyInstanceUid,
      project: d.project,
      participant: d.participant,
      ...(d.event ? { event: d.event } : {}),
      requestedBy: "analysis",
    },
    cfg.projects,
  );
  const data: AnalysisJob = { ...d, trigger: d.trigger ?? "manual" };
  const job = await queue.add(d.job, data, { jobId: analysisJobId(data, `manual-${Date.now()}`) });
  return job.id!;
}

/** Ask a running analysis job to stop (the processor polls its data); Bull Board can do the same by editing `cancel`. */
export async function requestCancel(queue: AnalysisQueue, jobId: string): Promise<boolean> {
  const job = await queue.getJob(jobId);
  if (!job) return false;
  await job.updateData({ ...job.data, cancel: true });
  return true;
}

/**
 * On a study's arrival: queue the analysis jobs it triggers. A job fires for a study sent to its
 * called AE title, or for a study assigned to one of its trigger projects, once per number of images.
 * The study must be assigned (a transfer request gives the project and pseudonym).
 */
export async function triggerAnalyses(
  deps: {
    cfg: FionaConfig;
    paths: SitePaths;
    transfers: TransferRegistry;
    log: Logger;
    queue: AnalysisQueue;
  },
  studyInstanceUid: string,
  fileCount: number,
): Promise<string[]> {
  const jobs = deps.cfg.analysis.jobs.filter((j) => j.trigger.calledAe || j.trigger.projects.length);
  if (jobs.length === 0) return [];
  const series = await studySeries(deps.paths, studyInstanceUid);
  const calledAes = new Set(
    series.map((s) => s.summary.IncomingConnection?.AETitleCalled?.trim()).filter(Boolean),
  );
  const requests = await deps.transfers.forStudy(studyInstanceUid);
  const queued: string[] = [];
  for (const def of jobs) {
    const byAe = !!def.trigger.calledAe && calledAes.has(def.trigger.calledAe);
    const targets = requests.filter(
      (r) =>
        def.trigger.projects.includes(r.project) ||
        (byAe && (!def.results.project || def.results.project === r.project)),
    );
    if (byAe && targets.length === 0) {
      deps.log.warn(
        { studyInstanceUid, job: def.name },
        "study sent to an analysis AE title but not assigned to a project; run it with fiona analyze",
      );
      continue;
    }
    if (!targets.length || selectSeries(def, series).length === 0) continue;
    const seen = new Set<string>();
    for (const r of targets) {
      const key = `${r.project}\u0000${r.participant}\u0000${r.event ?? ""}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const data: AnalysisJob = {
        job: def.name,
        studyInstanceUid,
        project: r.project,
        participant: r.participant,
        ...(r.event !== undefined ? { event: r.event } : {}),
        trigger: byAe ? "called-ae" : "arrival",
      };
      const job = await deps.queue.add(def.name, data, { jobId: analysisJobId(data, fileCount) });
      queued.push(job.id!);
    }
  }
  if (queued.length) deps.log.info({ studyInstanceUid, jobs: queued }, "analysis jobs queued");
  return queued;
}
