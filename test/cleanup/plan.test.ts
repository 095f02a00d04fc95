import { describe, expect, it } from "vitest";
import { planArchiveCleanup, type StudyCandidate } from "../../src/cleanup/plan.js";

const DAY = 86_400_000;
const now = Date.UTC(2026, 0, 31);
const study = (uid: string, ageDays: number, extra: Partial<StudyCandidate> = {}): StudyCandidate => ({
  studyInstanceUid: uid,
  lastImageMs: now - ageDays * DAY,
  transferred: false,
  active: false,
  ...extra,
});

describe("planArchiveCleanup", () => {
  it("takes transferred and past-retention studies oldest first, then unsent ones oldest first, never an active one", () => {
    const plan = planArchiveCleanup(
      [
        study("1.1", 5, { transferred: true }),
        study("1.2", 20),
        study("1.3", 40),
        study("1.4", 90, { active: true }),
        study("1.5", 10, { transferred: true }),
        study("1.6", 2),
      ],
      now,
      { retentionDays: 30 },
    );
    expect(plan.map((p) => [p.studyInstanceUid, p.reason])).toEqual([
      ["1.3", "past-retention"],
      ["1.5", "transferred"],
      ["1.1", "transferred"],
      ["1.2", "unsent-disk-full"],
      ["1.6", "unsent-disk-full"],
    ]);
  });

  it("an active transferred study is kept too", () => {
    expect(
      planArchiveCleanup([study("1.1", 50, { transferred: true, active: true })], now, { retentionDays: 7 }),
    ).toEqual([]);
  });
});
