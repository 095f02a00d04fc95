/**
 * One decision of a scanner pull (the original moveFromScanner.sh, per 15 s pass): which series to
 * C-MOVE now, and whether the study is done, should be checked again later, or is given up.
 * Pure: the processor gathers the inputs (C-FIND, raw/ counts, MPPS steps) and carries it out.
 */

export interface ScannerSeries {
  seriesInstanceUid: string;
  /**
   * Instances the scanner reports: ImagesInAcquisition, else NumberOfSeriesRelatedInstances, else the
   * number of IMAGE-level matches; undefined when the scanner tells none of them.
   */
  expected?: number;
}

/** The last C-MOVE of a series in this pull. */
export interface MoveRecord {
  /** Epoch ms the move ended. */
  at: number;
  /** The scanner reported Success with no failed sub-operations. */
  ok: boolean;
  /** Completed sub-operations the scanner reported. */
  completed: number;
}

export type MppsState = "none" | "in-progress" | "ended";

export interface PlanInput {
  onScanner: readonly ScannerSeries[];
  /** Instances under raw/<Study>/<Series>/ per series UID. */
  arrived: Readonly<Record<string, number>>;
  moves: Readonly<Record<string, MoveRecord>>;
  mpps: MppsState;
  /** Referenced images per series from the ended MPPS steps (PerformedSeriesSequence). */
  mppsImages: Readonly<Record<string, number>>;
  trigger: "mpps" | "manual";
  now: number;
  startedAt: number;
  giveUpHours: number;
  /** A series moved this recently is not moved again (its images may still be in ingest). */
  moveAgainMs: number;
}

export type ExpectedFrom = "scanner" | "mpps" | "move" | "unknown";

export interface SeriesState {
  seriesInstanceUid: string;
  arrived: number;
  expected?: number;
  expectedFrom: ExpectedFrom;
  complete: boolean;
}

export interface Plan {
  action: "done" | "give-up" | "move" | "wait";
  /** Series to C-MOVE now (action "move"). */
  move: string[];
  series: SeriesState[];
}

function seriesState(s: ScannerSeries, input: PlanInput): SeriesState {
  const uid = s.seriesInstanceUid;
  const arrived = input.arrived[uid] ?? 0;
  const move = input.moves[uid];
  // Siemens sends no ImagesInAcquisition and GE no series keys: fall back to the ended MPPS step's
  // references, then to the scanner's own C-MOVE report (no failed sub-operations).
  let expected: number | undefined;
  let expectedFrom: ExpectedFrom = "unknown";
  if (s.expected !== undefined) [expected, expectedFrom] = [s.expected, "scanner"];
  else if (input.mpps === "ended" && input.mppsImages[uid] !== undefined)
    [expected, expectedFrom] = [input.mppsImages[uid], "mpps"];
  else if (move?.ok) [expected, expectedFrom] = [move.completed, "move"];
  const complete = expected !== undefined && arrived >= expected;
  return {
    seriesInstanceUid: uid,
    arrived,
    ...(expected !== undefined ? { expected } : {}),
    expectedFrom,
    complete,
  };
}

export function planPull(input: PlanInput): Plan {
  const series = input.onScanner.map((s) => seriesState(s, input));
  const allComplete = series.length > 0 && series.every((s) => s.complete);
  const mppsDone = input.trigger === "manual" ? input.mpps !== "in-progress" : input.mpps === "ended";
  if (allComplete && mppsDone) return { action: "done", move: [], series };
  if (input.now - input.startedAt >= input.giveUpHours * 3600_000)
    return { action: "give-up", move: [], series };
  const move = series
    .filter((s) => !s.complete)
    .map((s) => s.seriesInstanceUid)
    .filter((uid) => {
      const last = input.moves[uid];
      return last === undefined || input.now - last.at >= input.moveAgainMs;
    });
  return { action: move.length > 0 ? "move" : "wait", move, series };
}
