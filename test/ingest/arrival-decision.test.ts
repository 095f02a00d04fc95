import { describe, expect, it } from "vitest";
import { decideArrival, type ArrivalFacts } from "../../src/ingest/arrival-decision.js";

const base: ArrivalFacts = {
  nowMs: 100_000,
  lastActivityMs: 100_000 - 15_000,
  quietMs: 15_000,
  ingestPending: false,
  changed: true,
  pollMs: 500,
};

describe("decideArrival", () => {
  it("fires once the quiet time since the last received image has passed and ingest is done", () => {
    expect(decideArrival(base)).toEqual({ action: "fire" });
    expect(decideArrival({ ...base, lastActivityMs: 0 })).toEqual({ action: "fire" });
  });

  it("waits out the rest of the quiet time", () => {
    expect(decideArrival({ ...base, lastActivityMs: base.nowMs - 4_000 })).toEqual({
      action: "wait",
      afterMs: 11_000,
      reason: "not quiet",
    });
    // Not quiet wins over pending ingest: the next look comes at the end of the quiet time.
    expect(decideArrival({ ...base, lastActivityMs: base.nowMs, ingestPending: true })).toEqual({
      action: "wait",
      afterMs: 15_000,
      reason: "not quiet",
    });
  });

  it("counts a study quiet within timer jitter", () => {
    expect(decideArrival({ ...base, lastActivityMs: base.nowMs - 14_990 }).action).toBe("fire");
    expect(decideArrival({ ...base, lastActivityMs: base.nowMs - 14_900 }).action).toBe("wait");
  });

  it("polls while ingest work of a quiet study is waiting, delayed or active", () => {
    expect(decideArrival({ ...base, ingestPending: true })).toEqual({
      action: "wait",
      afterMs: 500,
      reason: "ingest pending",
    });
    // However long ago the study was received.
    expect(decideArrival({ ...base, lastActivityMs: 0, ingestPending: true }).action).toBe("wait");
  });

  it("skips a study with nothing new since its last arrival", () => {
    expect(decideArrival({ ...base, changed: false })).toEqual({ action: "skip", reason: "nothing new" });
  });

  it("waits at most the quiet time when the last reception lies in the future (clock skew)", () => {
    expect(decideArrival({ ...base, lastActivityMs: base.nowMs + 60_000 })).toEqual({
      action: "wait",
      afterMs: 15_000,
      reason: "not quiet",
    });
  });
});
