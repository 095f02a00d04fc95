/**
 * Re-classify one study after a rule change: every series of raw/<Study>/ is classified again from its
 * files and its JSON rewritten (atomically, under the lock ingest takes) when ClassifyType changed. If
 * any series changed, the study's arrival is armed again: the arrival stage records the new series list
 * in the incoming list and queues study-arrived, which re-evaluates routing (de-duplicated requests),
 * pushes the study to REDCap Incoming again and triggers the analysis jobs that select by ClassifyType.
 */
import type { Redis } from "ioredis";
import type { CompiledRules } from "../classify/index.js";
import { readJsonIfExists, writeFileAtomic } from "../fs/atomic.js";
import type { SeriesSummary } from "../ingest/series-summary.js";
import { readStudySummaries } from "../ingest/study-summaries.js";
import type { Logger } from "../log.js";
import type { SitePaths } from "../paths.js";
import { armArrival } from "../ingest/arrival.js";
import type { TypedQueue } from "../queues/index.js";
import { registryKeys } from "../registry/keys.js";
import { withLock } from "../registry/lock.js";
import { filesInIngestOrder, replayClassification, sameTypes } from "./series.js";

export interface ReclassifyDeps {
  paths: SitePaths;
  redis: Redis;
  prefix: string;
  rules: () => CompiledRules;
  arrivalQueue: TypedQueue<"arrival">;
  log: Logger;
}

export interface SeriesChange {
  seriesInstanceUid: string;
  before: string[];
  after: string[];
}

export interface ReclassifyResult {
  series: number;
  changed: SeriesChange[];
  /** Whether the study's arrival (and with it routing) was triggered again. */
  rearrived: boolean;
}

/** Delay of the re-armed arrival: at once, unless images are still coming (the arrival stage waits). */
const REARRIVE_DELAY_MS = 1;

export async function reclassifyStudy(deps: ReclassifyDeps, studyUid: string): Promise<ReclassifyResult> {
  const { paths } = deps;
  const rules = deps.rules();
  const summaries = await readStudySummaries(paths, studyUid);
  const changed: SeriesChange[] = [];
  for (const { seriesInstanceUid } of summaries) {
    const jsonPath = paths.seriesJson(studyUid, seriesInstanceUid);
    const lock = registryKeys(deps.prefix).seriesLock(seriesInstanceUid);
    const change = await withLock(
      deps.redis,
      lock,
      async (): Promise<SeriesChange | undefined> => {
        // Read again under the lock: ingest may have written the JSON since the listing.
        const stored = await readJsonIfExists<SeriesSummary>(jsonPath);
        if (!stored) return undefined;
        const files = await filesInIngestOrder(paths.rawSeriesDir(studyUid, seriesInstanceUid));
        const before = stored.ClassifyType ?? [];
        const after = await replayClassification(rules, files, stored);
        if (sameTypes(before, after)) return undefined;
        await writeFileAtomic(jsonPath, JSON.stringify({ ...stored, ClassifyType: after }, null, 2));
        return { seriesInstanceUid, before, after };
      },
      { ttlMs: 60_000, renew: true },
    );
    if (change) changed.push(change);
  }
  const rearrived = changed.length > 0;
  if (rearrived) await armArrival(deps, studyUid, REARRIVE_DELAY_MS);
  deps.log.info(
    { studyInstanceUid: studyUid, series: summaries.length, changed: changed.length, rearrived },
    "study reclassified",
  );
  return { series: summaries.length, changed, rearrived };
}
