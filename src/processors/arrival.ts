import type { Job } from "bullmq";
import { readStudySummaries } from "../ingest/study-summaries.js";
import type { Logger } from "../log.js";
import type { SitePaths } from "../paths.js";
import { QUEUES, type ArrivalJob, type TypedQueue } from "../queues/index.js";
import type { SeriesEntry, StudyRegistry } from "../registry/studies.js";
import { armArrival } from "../ingest/arrival.js";
import type { Stage } from "./stage.js";

export interface ArrivalDeps {
  paths: SitePaths;
  registry: StudyRegistry;
  arrivalQueue: TypedQueue<"arrival">;
  studyArrivedQueue: TypedQueue<"study-arrived">;
  quietMs: number;
  log: Logger;
}

export type ArrivalResult =
  { fired: false; reason: string } | { fired: true; arrival: number; fileCount: number };

/** Timer jitter allowance: a study quiet for quietMs minus this counts as quiet. */
const TOLERANCE_MS = 25;

async function processArrival(job: Job<ArrivalJob>, deps: ArrivalDeps): Promise<ArrivalResult> {
  const uid = job.data.studyInstanceUid;
  // Free the debounce key first: an image arriving from now on must arm a new arrival.
  await job.removeDeduplicationKey();
  const last = await deps.registry.lastSeenMs(uid);
  if (last === undefined) return { fired: false, reason: "unknown study" };
  const quietFor = Date.now() - last;
  if (quietFor < deps.quietMs - TOLERANCE_MS) {
    // An image slipped in while this job was being promoted: wait out the rest of the quiet time.
    await armArrival(deps.arrivalQueue, uid, deps.quietMs - quietFor);
    return { fired: false, reason: "not quiet yet" };
  }
  const series = await readSeriesEntries(deps.paths, uid);
  const fileCount = series.reduce((n, s) => n + s.numFiles, 0);
  const arrival = await deps.registry.recordArrival(uid, series);
  await deps.studyArrivedQueue.add(
    QUEUES.studyArrived,
    {
      studyInstanceUid: uid,
      arrivedAt: new Date().toISOString(),
      arrival,
      seriesCount: series.length,
      fileCount,
    },
    { jobId: `${uid}-${arrival}` },
  );
  deps.log.info({ studyInstanceUid: uid, arrival, series: series.length, files: fileCount }, "study arrived");
  return { fired: true, arrival, fileCount };
}

/** Series of a study from the raw/<Study>/<Series>.json summaries. */
async function readSeriesEntries(paths: SitePaths, studyUid: string): Promise<SeriesEntry[]> {
  return (await readStudySummaries(paths, studyUid)).map(({ seriesInstanceUid, summary: s }) => ({
    seriesInstanceUid,
    seriesNumber: s.SeriesNumber === undefined ? undefined : String(s.SeriesNumber),
    seriesDescription: s.SeriesDescription === undefined ? undefined : String(s.SeriesDescription),
    modality: Array.isArray(s.Modality)
      ? s.Modality.join("\\")
      : s.Modality === undefined
        ? undefined
        : String(s.Modality),
    classifyType: s.ClassifyType ?? [],
    numFiles: Number(s.NumFiles ?? 0),
  }));
}

export const arrivalProcessor: Stage<ArrivalDeps, ArrivalJob, ArrivalResult> = (deps) => (job) =>
  processArrival(job, deps);
