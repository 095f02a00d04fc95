import { promises as fs } from "node:fs";
import path from "node:path";
import type { Job } from "bullmq";
import { deidSettings, type FionaConfig } from "../config/schema.js";
import { readJsonIfExists } from "../fs/atomic.js";
import type { SeriesSummary } from "../ingest/series-summary.js";
import type { SitePaths } from "../paths.js";
import type { SeriesTransferJob } from "../queues/index.js";
import type { DeidPool } from "../transfer/deid-pool.js";
import { projectOf, siteSecret, type DeidentifyResult } from "../transfer/stage.js";
import type { Stage } from "./stage.js";

export interface DeidentifyDeps {
  cfg: FionaConfig;
  paths: SitePaths;
  pool: DeidPool;
}

/** Pseudonymize one series into the outbox, in worker threads. */
async function processDeidentify(
  job: Job<SeriesTransferJob>,
  deps: DeidentifyDeps,
): Promise<DeidentifyResult> {
  const d = job.data;
  const project = projectOf(deps.cfg, d.project);
  const secret = siteSecret(deps.cfg);
  const dir = deps.paths.rawSeriesDir(d.studyInstanceUid, d.seriesInstanceUid);
  const files = (await fs.readdir(dir)).sort().map((f) => path.join(dir, f));
  const summary = await readJsonIfExists<SeriesSummary>(
    deps.paths.seriesJson(d.studyInstanceUid, d.seriesInstanceUid),
  );
  const outDir = deps.paths.outboxSeries(d.requestId, d.seriesInstanceUid);
  const r = await deps.pool.run({
    files,
    outDir,
    ctx: {
      project: deidSettings(project),
      participant: d.participant,
      ...(d.event !== undefined ? { event: d.event } : {}),
      secret,
      classifyTypes: summary?.ClassifyType ?? [],
    },
  });
  const dropped = Object.values(r.dropped).reduce((a, b) => a + b, 0);
  await job.log(
    `de-identified ${r.written} of ${files.length} files` +
      (dropped ? `; dropped ${JSON.stringify(r.dropped)}` : "") +
      (r.refused.length ? `; refused ${r.refused.length}: ${r.refused[0]!.reason}` : ""),
  );
  return {
    outDir,
    written: r.written,
    dropped,
    refused: r.refused.length,
    ...(r.refused[0] ? { refusedReason: r.refused[0].reason } : {}),
    ...(r.pseudoStudyInstanceUid ? { pseudoStudyInstanceUid: r.pseudoStudyInstanceUid } : {}),
    ...(r.pseudoSeriesInstanceUid ? { pseudoSeriesInstanceUid: r.pseudoSeriesInstanceUid } : {}),
  };
}

export const deidentifyProcessor: Stage<DeidentifyDeps, SeriesTransferJob, DeidentifyResult> =
  (deps) => (job) =>
    processDeidentify(job, deps);
