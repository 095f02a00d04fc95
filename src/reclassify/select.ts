/**
 * Studies for `fiona reclassify --all-since`: every study in raw/ (not only those still in the
 * incoming list) whose series JSON was last written, i.e. last received an image, on or after the date.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { isPathSafeUid } from "../dicom/uid.js";
import type { SitePaths } from "../paths.js";

/** Start of a YYYY-MM-DD (or YYYYMMDD) day in UTC, in ms. */
export function dayStartMs(day: string): number {
  const m = /^(\d{4})-?(\d{2})-?(\d{2})$/.exec(day.trim());
  const ms = m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : NaN;
  if (!m || Number.isNaN(ms) || new Date(ms).getUTCDate() !== Number(m[3]))
    throw new RangeError(`not a date (YYYY-MM-DD): ${day}`);
  return ms;
}

export async function studiesSince(paths: SitePaths, sinceMs: number): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(paths.raw);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const out: string[] = [];
  for (const study of names.filter(isPathSafeUid).sort()) {
    const dir = paths.rawStudyDir(study);
    const jsons = (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith(".json"));
    const times = await Promise.all(jsons.map((n) => fs.stat(path.join(dir, n)).then((s) => s.mtimeMs)));
    if (times.some((t) => t >= sinceMs)) out.push(study);
  }
  return out;
}
