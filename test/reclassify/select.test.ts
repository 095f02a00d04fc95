import { describe, expect, it } from "vitest";
import { sameTypes } from "../../src/reclassify/series.js";
import { dayStartMs } from "../../src/reclassify/select.js";

describe("reclassify helpers", () => {
  it("reads --all-since as the start of a UTC day and refuses impossible dates", () => {
    expect(dayStartMs("2026-03-01")).toBe(Date.UTC(2026, 2, 1));
    expect(dayStartMs("20260301")).toBe(Date.UTC(2026, 2, 1));
    expect(() => dayStartMs("2026-02-30")).toThrow(RangeError);
    expect(() => dayStartMs("yesterday")).toThrow(/YYYY-MM-DD/);
  });

  it("compares ClassifyType lists as sets", () => {
    expect(sameTypes(["MR", "T1"], ["T1", "MR"])).toBe(true);
    expect(sameTypes(["MR"], ["MR", "T1"])).toBe(false);
    expect(sameTypes([], [])).toBe(true);
  });
});
