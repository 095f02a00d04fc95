import { describe, expect, it } from "vitest";
import { planPull, type PlanInput } from "../../src/scanner/pull-plan.js";
import { MPPS_STATUS, applySet, stepFromCreate, stepsEnded } from "../../src/scanner/mpps-step.js";

const HOUR = 3600_000;
const base = (over: Partial<PlanInput> = {}): PlanInput => ({
  onScanner: [
    { seriesInstanceUid: "1.1", expected: 3 },
    { seriesInstanceUid: "1.2", expected: 2 },
  ],
  arrived: { "1.1": 3 },
  moves: {},
  mpps: "in-progress",
  mppsImages: {},
  trigger: "mpps",
  now: 10 * HOUR,
  startedAt: 9 * HOUR,
  giveUpHours: 24,
  moveAgainMs: 60_000,
  ...over,
});

describe("planPull", () => {
  it("moves the series whose count has not arrived", () => {
    const plan = planPull(base());
    expect(plan).toMatchObject({ action: "move", move: ["1.2"] });
    expect(plan.series[0]).toMatchObject({ complete: true, expectedFrom: "scanner" });
  });

  it("does not move a series again within moveAgainMs; waits instead", () => {
    const moves = { "1.2": { at: 10 * HOUR - 1000, ok: true, completed: 2 } };
    expect(planPull(base({ moves }))).toMatchObject({ action: "wait", move: [] });
    expect(planPull(base({ moves, now: 10 * HOUR + 60_000 }))).toMatchObject({
      action: "move",
      move: ["1.2"],
    });
  });

  it("waits for the MPPS step to end although every count matches, then is done", () => {
    const arrived = { "1.1": 3, "1.2": 2 };
    expect(planPull(base({ arrived })).action).toBe("wait");
    expect(planPull(base({ arrived, mpps: "ended" })).action).toBe("done");
  });

  it("a manual pull is done when the counts match and no MPPS step is in progress", () => {
    const arrived = { "1.1": 3, "1.2": 2 };
    expect(planPull(base({ arrived, trigger: "manual", mpps: "none" })).action).toBe("done");
    expect(planPull(base({ arrived, trigger: "manual" })).action).toBe("wait");
  });

  it("without scanner counts, uses the ended step's references, then the scanner's C-MOVE report", () => {
    const onScanner = [{ seriesInstanceUid: "1.1" }, { seriesInstanceUid: "1.2" }];
    const arrived = { "1.1": 4, "1.2": 5 };
    const moves = { "1.2": { at: 0, ok: true, completed: 5 } };
    const plan = planPull(base({ onScanner, arrived, moves, mpps: "ended", mppsImages: { "1.1": 4 } }));
    expect(plan.action).toBe("done");
    expect(plan.series.map((s) => s.expectedFrom)).toEqual(["mpps", "move"]);
    // A move with failed sub-operations proves nothing: the series is moved again.
    const failed = { "1.2": { at: 0, ok: false, completed: 5 } };
    expect(
      planPull(base({ onScanner, arrived, moves: failed, mpps: "ended", mppsImages: { "1.1": 4 } })),
    ).toMatchObject({
      action: "move",
      move: ["1.2"],
    });
  });

  it("gives up after giveUpHours, but a complete study is done even then", () => {
    expect(planPull(base({ now: 9 * HOUR + 24 * HOUR })).action).toBe("give-up");
    expect(planPull(base({ onScanner: [], now: 40 * HOUR })).action).toBe("give-up");
    const arrived = { "1.1": 3, "1.2": 2 };
    expect(planPull(base({ arrived, mpps: "ended", now: 40 * HOUR })).action).toBe("done");
  });

  it("an empty answer from the scanner is not complete", () => {
    expect(planPull(base({ onScanner: [], mpps: "ended" })).action).toBe("wait");
  });
});

describe("MPPS steps", () => {
  const origin = { sopInstanceUid: "1.2.3", scanner: "MR1", callingAe: "MR", now: new Date(0) };
  const create = {
    PatientName: "X^Y",
    PatientID: "PID",
    PerformedProcedureStepStatus: "in progress",
    ScheduledStepAttributesSequence: [
      { StudyInstanceUID: "1.2.4", AccessionNumber: "ACC" },
      { StudyInstanceUID: "1.2.4" },
    ],
  };

  it("keeps only identifiers, status and times", () => {
    const step = stepFromCreate(create, origin);
    expect(step).toMatchObject({ status: "IN PROGRESS", studyInstanceUids: ["1.2.4"], series: [] });
    expect(JSON.stringify(step)).not.toMatch(/PID|ACC|X\^Y/);
  });

  it("rejects bad values with the PS3.4 statuses", () => {
    expect(() => stepFromCreate({ ...create, PerformedProcedureStepStatus: "DONE" }, origin)).toThrow(
      expect.objectContaining({ status: MPPS_STATUS.InvalidAttributeValue }),
    );
    expect(() => stepFromCreate({ ...create, PerformedProcedureStepStatus: undefined }, origin)).toThrow(
      expect.objectContaining({ status: MPPS_STATUS.MissingAttribute }),
    );
    const badSeries = { PerformedSeriesSequence: [{ SeriesInstanceUID: "1/2" }] };
    expect(() => applySet(stepFromCreate(create, origin), badSeries, new Date())).toThrow(
      expect.objectContaining({ status: MPPS_STATUS.InvalidAttributeValue }),
    );
  });

  it("ends a step once; stepsEnded needs every step over", () => {
    const step = stepFromCreate(create, origin);
    const ended = applySet(step, { PerformedProcedureStepStatus: "DISCONTINUED" }, new Date());
    expect(stepsEnded([ended])).toBe(true);
    expect(stepsEnded([ended, step])).toBe(false);
    expect(stepsEnded([])).toBe(false);
    expect(() => applySet(ended, {}, new Date())).toThrow(
      expect.objectContaining({ status: MPPS_STATUS.ProcessingFailure }),
    );
  });
});
