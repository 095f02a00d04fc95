import { describe, expect, it } from "vitest";
import type { TagValue } from "../../src/dicom/header.js";
import { classify, compileRules, type CompiledRules } from "../../src/classify/index.js";
import { fakeDs } from "./fake.js";

/** Classify the files of one series in arrival order, feeding each result into the next file. */
function series(rules: CompiledRules, files: Array<Record<string, TagValue>>): string[][] {
  const seen: string[][] = [];
  let types: string[] = [];
  for (const elements of files) {
    types = classify(rules, { ClassifyType: ["ignored: previous wins"] }, fakeDs(elements), types);
    seen.push(types);
  }
  return seen;
}

const orientation = (type: string, iop: number[]) => ({
  type,
  rules: [{ tag: ["0x20", "0x37"], operator: "approx", value: iop, approxLevel: "0.0004" }],
});
const AXIAL = orientation("axial", [1, 0, 0, 0, 1, 0]);
const CORONAL = orientation("coronal", [1, 0, 0, 0, 0, -1]);
const SAGITTAL = orientation("sagittal", [0, 1, 0, 0, 0, -1]);
/** The documented idiom ([MB] / [ABCD] readme). */
const OBLIQUE = {
  type: "oblique",
  check: "SeriesLevel",
  rules: ["axial", "coronal", "sagittal"].map((value) => ({
    tag: ["ClassifyType"],
    value,
    operator: "contains",
    negate: "yes",
  })),
};
const LOCALIZER = {
  type: "localizer",
  rules: ["axial", "coronal", "sagittal"].map((value) => ({
    tag: ["ClassifyType"],
    value,
    operator: "contains",
  })),
};

const iop = (v: number[]) => ({ ImageOrientationPatient: v });
const ax = iop([1, 0, 0, 0, 1, 0]);
const cor = iop([1, 0, 0, 0, 0, -1]);
const sag = iop([0, 1, 0, 0, 0, -1]);
const obl = iop([0.9, 0.43, 0, 0, 0, -1]);

describe("ClassifyType accumulation", () => {
  const rules = compileRules([AXIAL, CORONAL, SAGITTAL, OBLIQUE, LOCALIZER]);

  it("adds each matching type once, keeping the order of first addition", () => {
    expect(series(rules, [cor, ax, cor, ax]).at(-1)).toEqual(["coronal", "axial"]);
  });

  it("lets rules on ClassifyType see only the previous files (localizer appears one file late)", () => {
    const steps = series(rules, [ax, cor, sag, sag]);
    expect(steps[2]).toEqual(["axial", "coronal", "sagittal"]);
    expect(steps[3]).toEqual(["axial", "coronal", "sagittal", "localizer"]);
  });

  it("retracts a SeriesLevel type once a file fails it, and the original's idiom lags one file", () => {
    const steps = series(rules, [ax, ax]);
    // File 1: ClassifyType was still empty, so oblique passed.
    expect(steps[0]).toEqual(["axial", "oblique"]);
    expect(steps[1]).toEqual(["axial"]);
  });

  it("keeps a SeriesLevel type while every file passes", () => {
    expect(series(rules, [obl, obl, obl]).at(-1)).toEqual(["oblique"]);
  });

  it("a failing file retracts, and the ClassifyType test keeps it retracted", () => {
    const steps = series(rules, [obl, ax, obl, obl]);
    expect(steps[0]).toEqual(["oblique"]);
    expect(steps[1]).toEqual(["oblique", "axial"]);
    expect(steps[2]).toEqual(["axial"]);
    expect(steps[3]).toEqual(["axial"]);
  });

  it("a plain SeriesLevel type comes back when a later file matches again", () => {
    const r = compileRules([
      { type: "big", check: "SeriesLevel", rules: [{ tag: ["0x28", "0x10"], operator: ">", value: "100" }] },
    ]);
    expect(series(r, [{ Rows: 256 }, { Rows: 64 }, { Rows: 256 }])).toEqual([["big"], [], ["big"]]);
  });

  it("keeps types that no definition of this pass touches", () => {
    const axialOnly = compileRules([AXIAL]);
    expect(classify(axialOnly, {}, fakeDs(sag), ["from-an-older-rule-file"])).toEqual([
      "from-an-older-rule-file",
    ]);
  });
});

describe("SeriesLevel and several definitions of one type (OR)", () => {
  const plain = { type: "X", rules: [{ tag: ["0x08", "0x60"], value: "^MR$" }] };
  const level = { type: "X", check: "SeriesLevel", rules: [{ tag: ["0x08", "0x70"], value: "^GE" }] };

  it("a failing SeriesLevel definition removes the type another definition added earlier in the same pass", () => {
    const rules = compileRules([plain, level]);
    expect(classify(rules, {}, fakeDs({ Modality: "MR", Manufacturer: "SIEMENS" }), [])).toEqual([]);
    expect(classify(rules, {}, fakeDs({ Modality: "CT", Manufacturer: "GE" }), [])).toEqual(["X"]);
    expect(rules.warnings).toHaveLength(1);
  });

  it("a later matching definition adds it back: file order decides", () => {
    const rules = compileRules([level, plain]);
    expect(classify(rules, {}, fakeDs({ Modality: "MR", Manufacturer: "SIEMENS" }), ["X"])).toEqual(["X"]);
    expect(classify(rules, {}, fakeDs({ Modality: "CT", Manufacturer: "SIEMENS" }), ["X"])).toEqual([]);
  });
});
