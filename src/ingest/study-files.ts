/** What of a study ingest has filed under raw/<Study>/: its series folders and the files in them. */
import { promises as fs } from "node:fs";
import { isPathSafeUid } from "../dicom/uid.js";
import type { SitePaths } from "../paths.js";

/** Series of a study on disk (raw/<Study>/<Series>/), in UID order; [] for an unknown study. */
export async function studySeries(paths: SitePaths, studyUid: string): Promise<string[]> {
  const entries = await fs.readdir(paths.rawStudyDir(studyUid), { withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isDirectory() && isPathSafeUid(e.name))
    .map((e) => e.name)
    .sort();
}

/**
 * Files of a study on disk, over the given series or all of them. A series folder that is gone by the
 * time it is read counts 0.
 */
export async function studyFileCount(
  paths: SitePaths,
  studyUid: string,
  series?: readonly string[],
): Promise<number> {
  const counts = await Promise.all(
    (series ?? (await studySeries(paths, studyUid))).map((s) =>
      fs.readdir(paths.rawSeriesDir(studyUid, s)).then(
        (names) => names.length,
        () => 0,
      ),
    ),
  );
  return counts.reduce((a, b) => a + b, 0);
}
