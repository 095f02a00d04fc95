import { copyFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import type { Redis } from "ioredis";
import type { FionaConfig } from "../../src/config/schema.js";
import { SitePaths } from "../../src/paths.js";
import { QUEUES, createQueue, type IngestJob } from "../../src/queues/index.js";
import type { GeneratedStudy } from "./generate.js";

/**
 * Put generated files into the archive as the receiver would and queue their ingest jobs, so stage
 * tests can start from "received" without a DICOM association. `only` picks a subset of files.
 */
export async function receiveLocally(
  cfg: FionaConfig,
  redis: Redis,
  study: GeneratedStudy,
  only: (i: number) => boolean = () => true,
  callingAe = "SCANNER1",
): Promise<IngestJob[]> {
  const paths = new SitePaths(cfg.dataDir);
  const dir = paths.archiveStudyDir(study.studyInstanceUid);
  mkdirSync(dir, { recursive: true });
  const jobs: IngestJob[] = [];
  study.files.forEach((f, i) => {
    if (!only(i)) return;
    const dest = path.join(dir, `${study.modality}.${study.sopInstanceUids[i]}`);
    copyFileSync(f, dest);
    jobs.push({
      path: dest,
      callingAe,
      calledAe: "FIONA",
      peer: "127.0.0.1",
      receivedAt: new Date().toISOString(),
    });
  });
  const q = createQueue(QUEUES.ingest, redis, cfg.redis.prefix);
  await q.addBulk(jobs.map((data) => ({ name: QUEUES.ingest, data })));
  await q.close();
  return jobs;
}

/** Place a generated study's files directly under raw/<Study>/<Series>/ (for stages that read only raw/). */
export function placeInRaw(dataDir: string, study: GeneratedStudy): void {
  const paths = new SitePaths(dataDir);
  study.files.forEach((f, i) => {
    const series = study.series.find((s) => s.sopInstanceUids.includes(study.sopInstanceUids[i]!))!;
    const dir = paths.rawSeriesDir(study.studyInstanceUid, series.seriesInstanceUid);
    mkdirSync(dir, { recursive: true });
    copyFileSync(f, path.join(dir, study.sopInstanceUids[i]!));
  });
}
