/**
 * The I/O of one pull pass: what the scanner holds (C-FIND), what has arrived (raw/), which MPPS
 * steps are over, and the C-MOVEs the plan asks for. src/processors/scanner-pull.ts runs the passes.
 */
import { promises as fs } from "node:fs";
import { scuDestination } from "../dimse/connect.js";
import type { FionaConfig } from "../config/schema.js";
import { cFind, matchText, type FindDestination } from "../dimse/find.js";
import { isPathSafeUid } from "../dicom/uid.js";
import type { SitePaths } from "../paths.js";
import type { ScannerConfig } from "./config.js";
import { cMoveSeries, MOVE_DESTINATION_UNKNOWN, type MoveResult } from "./move.js";
import { stepsEnded, type MppsStep } from "./mpps-step.js";
import type { MppsState, MoveRecord, ScannerSeries } from "./pull-plan.js";

/** The scanner refused the pull in a way a retry will not fix (unknown move destination, bad key). */
export class PullRefusedError extends Error {
  override name = "PullRefusedError";
}

export function scannerDestination(cfg: FionaConfig, scanner: ScannerConfig): FindDestination {
  return scuDestination(scanner, cfg.aeTitle);
}

const count = (v: string | undefined): number | undefined => {
  const n = v === undefined ? NaN : Number(v);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
};

/**
 * The study's series on the scanner, with their instance counts. No patient keys are asked for.
 * A series without a count but with images already here is counted at IMAGE level (one SOP
 * Instance UID per match), so a partly received series is completed without moving it whole.
 */
export async function seriesOnScanner(
  dest: FindDestination,
  studyInstanceUid: string,
  arrived: (series: string) => Promise<number>,
  timeoutMs: number,
): Promise<ScannerSeries[]> {
  const found = await cFind(
    dest,
    "SERIES",
    {
      StudyInstanceUID: studyInstanceUid,
      SeriesInstanceUID: "",
      Modality: "",
      SeriesNumber: "",
      ImagesInAcquisition: "",
      NumberOfSeriesRelatedInstances: "",
    },
    { timeoutMs },
  );
  if (found.status !== "success")
    throw new Error(
      `C-FIND SERIES on ${dest.calledAe}: status 0x${found.statusCode.toString(16).padStart(4, "0")}`,
    );
  const series = new Map<string, ScannerSeries>();
  for (const m of found.matches) {
    const uid = matchText(m, "SeriesInstanceUID");
    // A UID we cannot use as a path is skipped, never moved into raw/.
    if (!isPathSafeUid(uid)) continue;
    const expected =
      count(matchText(m, "ImagesInAcquisition")) ?? count(matchText(m, "NumberOfSeriesRelatedInstances"));
    series.set(uid, { seriesInstanceUid: uid, ...(expected !== undefined ? { expected } : {}) });
  }
  for (const s of series.values()) {
    if (s.expected !== undefined || (await arrived(s.seriesInstanceUid)) === 0) continue;
    const images = await cFind(
      dest,
      "IMAGE",
      { StudyInstanceUID: studyInstanceUid, SeriesInstanceUID: s.seriesInstanceUid, SOPInstanceUID: "" },
      { timeoutMs },
    );
    if (images.status === "success") s.expected = images.matches.length;
  }
  return [...series.values()];
}

/** Instances under raw/<Study>/<Series>/ (0 when the folder does not exist yet). */
export async function arrivedCount(paths: SitePaths, study: string, series: string): Promise<number> {
  try {
    return (await fs.readdir(paths.rawSeriesDir(study, series))).length;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw e;
  }
}

export function mppsState(steps: readonly MppsStep[]): MppsState {
  if (steps.length === 0) return "none";
  return stepsEnded(steps) ? "ended" : "in-progress";
}

/** Referenced images per series over the study's steps (the last step naming a series wins). */
export function mppsImages(steps: readonly MppsStep[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const step of steps) for (const s of step.series) out[s.seriesInstanceUid] = s.images;
  return out;
}

/** C-MOVE one series to ourselves; a refusal that configuration must fix throws PullRefusedError. */
export async function moveSeries(
  cfg: FionaConfig,
  dest: FindDestination,
  studyInstanceUid: string,
  seriesInstanceUid: string,
  now: () => number,
): Promise<{ record: MoveRecord; result: MoveResult }> {
  const result = await cMoveSeries(dest, cfg.aeTitle, studyInstanceUid, seriesInstanceUid, {
    timeoutMs: cfg.scanners.queryTimeoutMs,
    responseTimeoutMs: cfg.scanners.moveTimeoutMs,
  });
  if (result.statusCode === MOVE_DESTINATION_UNKNOWN)
    throw new PullRefusedError(
      `${dest.calledAe} does not know the move destination ${cfg.aeTitle} (status 0xa801): add FIONA's AE title, host and port to the scanner`,
    );
  const ok = result.status === "success" && result.failed === 0;
  return { record: { at: now(), ok, completed: result.completed }, result };
}
