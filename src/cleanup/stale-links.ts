/**
 * FIONA's clearStaleLinks: broken symlinks, empty folders and series JSON without their series folder
 * under raw/, participants/ and srs/ (srs may not exist). Deleting only what is already dangling never
 * loses data.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import type { SitePaths } from "../paths.js";

export interface StaleLinksResult {
  brokenLinks: number;
  emptyDirs: number;
  orphanedJson: number;
}

/** Walk `dir` depth first; returns whether it is empty afterwards (and removes it then, unless top). */
async function sweep(dir: string, top: boolean, r: StaleLinksResult, dryRun: boolean): Promise<boolean> {
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => undefined);
  if (!entries) return false;
  let left = entries.length;
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isSymbolicLink()) {
      if (
        await fs.stat(p).then(
          () => false,
          () => true,
        )
      ) {
        r.brokenLinks++;
        if (!dryRun) await fs.rm(p, { force: true });
        left--;
      }
    } else if (e.isDirectory()) {
      if (await sweep(p, false, r, dryRun)) left--;
    } else if (e.isFile() && e.name.endsWith(".json")) {
      const series = p.slice(0, -".json".length);
      if (
        await fs.stat(series).then(
          () => false,
          () => true,
        )
      ) {
        r.orphanedJson++;
        if (!dryRun) await fs.rm(p, { force: true });
        left--;
      }
    }
  }
  if (left > 0 || top) return false;
  r.emptyDirs++;
  if (!dryRun) await fs.rmdir(dir).catch(() => {});
  return true;
}

export async function clearStaleLinks(paths: SitePaths, dryRun = false): Promise<StaleLinksResult> {
  const r: StaleLinksResult = { brokenLinks: 0, emptyDirs: 0, orphanedJson: 0 };
  // Series JSON lives next to its series folder only under raw/<study>/.
  for (const root of [paths.raw, paths.participants, path.join(paths.site, "srs")])
    await sweep(root, true, r, dryRun);
  return r;
}
