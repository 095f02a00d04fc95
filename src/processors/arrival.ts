import type { Job } from "bullmq";
import type { Redis } from "ioredis";
import { scheduleArrivalCheck } from "../ingest/arrival.js";
import { decideArrival } from "../ingest/arrival-decision.js";
import { hasPendingIngest } from "../ingest/pending.js";
import { markArrived, readReception } from "../ingest/reception.js";
import { readStudySummaries } from "../ingest/study-summaries.js";
import type { Logger } from "../log.js";
import type { SitePaths } from "../paths.js";
import { QUEUES, type ArrivalJob, type TypedQueue } from "../queues/index.js";
import type { SeriesEntry, StudyRegistry } from "../registry/studies.js";
import type { Stage } from "./stage.js";

export interface ArrivalDeps {
  paths: SitePaths;
  redis: Redis;
  prefix: string;
  registry: StudyRegistry;
  ingestQueue: TypedQueue<"ingest">;
  arrivalQueue: TypedQueue<"arrival">;
  studyArrivedQueue: TypedQueue<"study-arrived">;
  quietMs: number;
  pollMs: number;
  log: Logger;
}

export type ArrivalResult =
  { fired: false; reason: string } | { fired: true; arrival: number; fileCount: number };

async function processArrival(job: Job<ArrivalJob>, deps: ArrivalDeps): Promise<ArrivalResult> {
  const uid = job.data.studyInstanceUid;
  const { redis, prefix } = deps;
  // Read before looking at ingest: whatever is ingested after this read is either still pending
  // below or counted by the next arrival.
  const state = await readReception(redis, prefix, uid);
  const lastActivityMs = state.lastReceivedMs ?? (await deps.registry.lastSeenMs(uid));
  if (lastActivityMs === undefined) return { fired: false, reason: "unknown study" };
  const decision = decideArrival({
    nowMs: Date.now(),
    lastActivityMs,
    quietMs: deps.quietMs,
    ingestPending: await hasPendingIngest(redis, prefix, deps.ingestQueue, uid),
    changed: state.revision > state.arrivedRevision,
    pollMs: deps.pollMs,
  });
  if (decision.action === "skip") return { fired: false, reason: decision.reason };
  if (decision.action === "wait") {
    await scheduleArrivalCheck(deps.arrivalQueue, uid, decision.afterMs);
    deps.log.debug(
      { studyInstanceUid: uid, reason: decision.reason, afterMs: decision.afterMs },
      "arrival waits",
    );
    return { fired: false, reason: decision.reason };
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
  // Last: a crash before this announces again rather than never.
  await markArrived(redis, prefix, uid, state.revision);
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
