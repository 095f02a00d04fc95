import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { deidentify, DeidParseError, DeidRefusedError, type DeidContext } from "../deid/index.js";
import { isPathSafeUid } from "../dicom/uid.js";
import { tempName } from "../fs/temp-name.js";

export interface DeidFilesTask {
  files: string[];
  outDir: string;
  ctx: DeidContext;
}

export interface DeidFilesResult {
  written: number;
  /** Reasons instances were not sent (presentation state, burned-in…), counted. */
  dropped: Record<string, number>;
  /** Files the engine refused or could not read: permanent, with a reason free of patient data. */
  refused: Array<{ file: string; reason: string }>;
  pseudoStudyInstanceUid?: string;
  pseudoSeriesInstanceUid?: string;
}

/**
 * De-identify files into outDir as <pseudo SOPInstanceUID>.dcm. Output names are deterministic, so a
 * retried or repeated run rewrites the same files; each write is atomic.
 */
export function deidentifyFiles(task: DeidFilesTask): DeidFilesResult {
  mkdirSync(task.outDir, { recursive: true });
  const result: DeidFilesResult = { written: 0, dropped: {}, refused: [] };
  for (const file of task.files) {
    let out;
    try {
      out = deidentify(readFileSync(file), task.ctx);
    } catch (e) {
      if (e instanceof DeidParseError || e instanceof DeidRefusedError) {
        result.refused.push({ file: path.basename(file), reason: e.message });
        continue;
      }
      throw e;
    }
    if (out.dropped !== undefined) {
      result.dropped[out.dropped] = (result.dropped[out.dropped] ?? 0) + 1;
      continue;
    }
    if (!isPathSafeUid(out.sopInstanceUid))
      throw new Error("de-identified SOPInstanceUID is not a valid UID");
    const dest = path.join(task.outDir, `${out.sopInstanceUid}.dcm`);
    const tmp = path.join(task.outDir, tempName(path.basename(dest)));
    writeFileSync(tmp, out.bytes);
    renameSync(tmp, dest);
    result.written++;
    result.pseudoStudyInstanceUid ??= out.studyInstanceUid;
    result.pseudoSeriesInstanceUid ??= out.seriesInstanceUid;
  }
  return result;
}

/** Combine the results of several chunks of one series. */
export function mergeDeidResults(parts: DeidFilesResult[]): DeidFilesResult {
  const merged: DeidFilesResult = { written: 0, dropped: {}, refused: [] };
  for (const p of parts) {
    merged.written += p.written;
    merged.refused.push(...p.refused);
    for (const [reason, n] of Object.entries(p.dropped))
      merged.dropped[reason] = (merged.dropped[reason] ?? 0) + n;
    merged.pseudoStudyInstanceUid ??= p.pseudoStudyInstanceUid;
    merged.pseudoSeriesInstanceUid ??= p.pseudoSeriesInstanceUid;
  }
  return merged;
}
