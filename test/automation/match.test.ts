import { describe, expect, it } from "vitest";
import { automationSchema } from "../../src/automation/config.js";
import {
  automationJobId,
  jobData,
  matchingSubscriptions,
  occurrenceKey,
} from "../../src/automation/match.js";

const hook = { type: "webhook", url: "http://127.0.0.1:1/h" } as const;
const subs = automationSchema.parse({
  subscriptions: [
    { name: "mri-proj", trigger: { type: "study-arrived", project: "MRI1" }, action: hook },
    { name: "ae", trigger: { type: "study-arrived", calledAe: "FIONA_AI" }, action: hook },
    { name: "both", trigger: { type: "study-arrived", project: "MRI1", calledAe: "FIONA_AI" }, action: hook },
    { name: "fail-any", trigger: { type: "transfer-failed" }, action: hook },
    { name: "done-mri", trigger: { type: "transfer-done", project: "MRI1" }, action: hook },
    { name: "disk90", trigger: { type: "disk-above", percent: 90 }, action: hook },
    { name: "disk-default", trigger: { type: "disk-above" }, action: hook },
    { name: "hb", trigger: { type: "heartbeat-failing" }, action: hook },
  ],
}).subscriptions;
const names = (t: Parameters<typeof matchingSubscriptions>[1]) =>
  matchingSubscriptions(subs, t).map((s) => s.name);
const arrived = {
  type: "study-arrived",
  studyInstanceUid: "1.2.3",
  calledAe: "FIONA",
  callingAe: "SCANNER",
} as const;

describe("automation matching", () => {
  it("matches study-arrived by project, called AE title, or both", () => {
    expect(names({ ...arrived, project: "MRI1" })).toEqual(["mri-proj"]);
    expect(names({ ...arrived, calledAe: "FIONA_AI" })).toEqual(["ae"]);
    expect(names({ ...arrived, project: "MRI1", calledAe: "FIONA_AI" })).toEqual(["mri-proj", "ae", "both"]);
    expect(names({ ...arrived, project: "OTHER" })).toEqual([]);
  });

  it("matches transfer results by type and optional project", () => {
    const t = { requestId: "r1", project: "MRI1", studyInstanceUid: "1.2.3" };
    expect(names({ type: "transfer-done", ...t })).toEqual(["done-mri"]);
    expect(names({ type: "transfer-done", ...t, project: "CT" })).toEqual([]);
    expect(names({ type: "transfer-failed", ...t, project: "CT", error: "refused" })).toEqual(["fail-any"]);
  });

  it("compares disk use with the subscription's percent, else the caller's threshold", () => {
    const d = { type: "disk-above", path: "/data", threshold: 80 } as const;
    expect(names({ ...d, percent: 85 })).toEqual(["disk-default"]);
    expect(names({ ...d, percent: 95 })).toEqual(["disk90", "disk-default"]);
    expect(names({ ...d, percent: 70 })).toEqual([]);
    expect(names({ type: "heartbeat-failing", consecutiveFailures: 3 })).toEqual(["hb"]);
  });

  it("rejects study-arrived without a filter and duplicate names", () => {
    expect(() =>
      automationSchema.parse({
        subscriptions: [{ name: "x", trigger: { type: "study-arrived" }, action: hook }],
      }),
    ).toThrow(/project or calledAe/);
    const s = { name: "x", trigger: { type: "heartbeat-failing" }, action: hook };
    expect(() => automationSchema.parse({ subscriptions: [s, s] })).toThrow(/unique/);
    expect(automationSchema.parse({})).toEqual({ subscriptions: [] });
  });

  it("keys occurrences so a retried stage enqueues the same job id", () => {
    const at = new Date("2026-12-03T10:15:00Z");
    const later = new Date("2026-12-03T10:45:00Z");
    const t = { ...arrived, project: "MRI1" };
    expect(occurrenceKey(t, at, "1")).toBe(occurrenceKey(t, later, "1"));
    expect(occurrenceKey(t, at, "1")).not.toBe(occurrenceKey(t, at, "2"));
    const hb = { type: "heartbeat-failing", consecutiveFailures: 3 } as const;
    expect(occurrenceKey(hb, at)).toBe(occurrenceKey({ ...hb, consecutiveFailures: 4 }, later));
    expect(occurrenceKey(hb, at)).not.toBe(occurrenceKey(hb, new Date("2026-12-03T11:00:00Z")));
    const id = automationJobId("mri-proj", occurrenceKey(t, at, "1"));
    expect(id).toMatch(/^mri-proj-[0-9a-f]{24}$/);
  });

  it("puts the trigger's identifiers in the job data, without its type", () => {
    const data = jobData(subs[0]!, { ...arrived, project: "MRI1" }, new Date("2026-12-03T10:15:00Z"));
    expect(data).toEqual({
      subscription: "mri-proj",
      trigger: "study-arrived",
      firedAt: "2026-12-03T10:15:00.000Z",
      subject: { studyInstanceUid: "1.2.3", project: "MRI1", calledAe: "FIONA", callingAe: "SCANNER" },
    });
  });
});
