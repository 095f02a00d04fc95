/**
 * scanner-pull: one pass of a pull (src/scanner/pull-plan.ts decides), then the job delays itself
 * by scanners.recheckSeconds until the study is complete or the pull gives up. Delaying does not use
 * up an attempt; attempts and backoff cover network and association failures.
 */
import { DelayedError, UnrecoverableError, type Job } from "bullmq";
import type { FionaConfig } from "../config/schema.js";
import { isPathSafeUid } from "../dicom/uid.js";
import type { Logger } from "../log.js";
import type { SitePaths } from "../paths.js";
import type { ScannerPullJob } from "../queues/index.js";
import type { MppsStore, PullOutcome } from "../scanner/mpps-store.js";
import {
  PullRefusedError,
  arrivedCount,
  moveSeries,
  mppsImages,
  mppsState,
  scannerDestination,
  seriesOnScanner,
} from "../scanner/pull.js";
import { planPull, type MoveRecord, type SeriesState } from "../scanner/pull-plan.js";
import type { Stage } from "./stage.js";

export interface ScannerPullDeps {
  cfg: FionaConfig;
  paths: SitePaths;
  store: MppsStore;
  log: Logger;
  now?: () => number;
}

export type ScannerPullResult = Pick<PullOutcome, "outcome" | "series">;

async function processScannerPull(
  job: Job<ScannerPullJob>,
  token: string | undefined,
  deps: ScannerPullDeps,
): Promise<ScannerPullResult> {
  const { cfg, paths, store } = deps;
  const now = deps.now ?? Date.now;
  const { studyInstanceUid: study, trigger } = job.data;
  if (!isPathSafeUid(study)) throw new UnrecoverableError("not a valid StudyInstanceUID");
  const scanner = cfg.scanners.list.find((s) => s.name === job.data.scanner);
  if (!scanner) throw new UnrecoverableError(`no scanner "${job.data.scanner}" in scanners.list`);
  const startedAt = Date.parse(job.data.startedAt);
  if (Number.isNaN(startedAt)) throw new UnrecoverableError("startedAt is not an ISO time");
  const dest = scannerDestination(cfg, scanner);
  const log = deps.log.child({
    queue: "scanner-pull",
    jobId: job.id,
    studyInstanceUid: study,
    scanner: scanner.name,
  });

  const arrived: Record<string, number> = {};
  const countArrived = async (series: string) =>
    (arrived[series] ??= await arrivedCount(paths, study, series));
  const moves: Record<string, MoveRecord> = { ...job.data.moves };
  try {
    const onScanner = await seriesOnScanner(dest, study, countArrived, cfg.scanners.queryTimeoutMs);
    for (const s of onScanner) await countArrived(s.seriesInstanceUid);
    const steps = await store.forStudy(study);
    const plan = planPull({
      onScanner,
      arrived,
      moves,
      mpps: mppsState(steps),
      mppsImages: mppsImages(steps),
      trigger,
      now: now(),
      startedAt,
      giveUpHours: cfg.scanners.giveUpHours,
      moveAgainMs: cfg.scanners.moveAgainSeconds * 1000,
    });
    await job.updateProgress({ action: plan.action, series: plan.series });

    if (plan.action === "done" || plan.action === "give-up") {
      const outcome = plan.action === "done" ? "complete" : "gave-up";
      await store.recordOutcome({
        studyInstanceUid: study,
        scanner: scanner.name,
        trigger,
        outcome,
        startedAt: job.data.startedAt,
        endedAt: new Date(now()).toISOString(),
        series: plan.series.map(outcomeSeries),
      });
      const missing = plan.series.filter((s) => !s.complete).length;
      if (outcome === "complete") {
        log.info({ event: "scanner-pull-complete", series: plan.series.length }, "scanner pull complete");
        return { outcome, series: plan.series.map(outcomeSeries) };
      }
      log.warn(
        { event: "scanner-pull-gave-up", series: plan.series.length, missing },
        "scanner pull gave up",
      );
      throw new UnrecoverableError(
        `gave up after ${cfg.scanners.giveUpHours} h: ` +
          (plan.series.length === 0
            ? "the scanner lists no series of the study"
            : `${missing} of ${plan.series.length} series incomplete`),
      );
    }

    for (const series of plan.move) {
      const { record, result } = await moveSeries(cfg, dest, study, series, now);
      moves[series] = record;
      log.info(
        {
          event: "scanner-pull-move",
          seriesInstanceUid: series,
          status: result.status,
          statusCode: result.statusCode,
          completed: result.completed,
          failed: result.failed,
        },
        "C-MOVE from the scanner",
      );
    }
  } catch (e) {
    if (e instanceof PullRefusedError) throw new UnrecoverableError(e.message);
    // A permanent association rejection (MoveAssociationError, or the SendError kinds of C-FIND).
    if ((e as { retryable?: unknown }).retryable === false)
      throw new UnrecoverableError((e as Error).message);
    throw e;
  } finally {
    // Keep what was moved, also when this pass failed part way (the retry does not move it again).
    if (Object.keys(moves).length) await job.updateData({ ...job.data, moves });
  }
  await job.moveToDelayed(Date.now() + cfg.scanners.recheckSeconds * 1000, token);
  throw new DelayedError();
}

function outcomeSeries(s: SeriesState): PullOutcome["series"][number] {
  return {
    seriesInstanceUid: s.seriesInstanceUid,
    arrived: s.arrived,
    ...(s.expected !== undefined ? { expected: s.expected } : {}),
    complete: s.complete,
  };
}

export const scannerPullProcessor: Stage<ScannerPullDeps, ScannerPullJob, ScannerPullResult> =
  (deps) => (job, token) =>
    processScannerPull(job, token, deps);
