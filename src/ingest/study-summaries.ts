import { promises as fs } from "node:fs";
import { isPathSafeUid } from "../dicom/uid.js";
import { readJsonIfExists } from "../fs/atomic.js";
import type { SitePaths } from "../paths.js";
import type { SeriesSummary } from "./series-summary.js";

export interface StudySeriesSummary {
  seriesInstanceUid: string;
  summary: SeriesSummary;
}

/** Every series summary of a study (raw/<Study>/<Series>.json) in series UID order; [] for an unknown study. */
export async function readStudySummaries(paths: SitePaths, studyUid: string): Promise<StudySeriesSummary[]> {
  let names: string[];
  try {
    names = await fs.readdir(paths.rawStudyDir(studyUid));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const out: StudySeriesSummary[] = [];
  for (const name of names.sort()) {
    const seriesInstanceUid = name.endsWith(".json") ? name.slice(0, -".json".length) : "";
    if (!isPathSafeUid(seriesInstanceUid)) continue; // directories and temporary files
    const summary = await readJsonIfExists<SeriesSummary>(paths.seriesJson(studyUid, seriesInstanceUid));
    if (summary) out.push({ seriesInstanceUid, summary });
  }
  return out;
}
