import { describe, expect, it } from "vitest";
import type { TagValue } from "../../src/dicom/header.js";
import { classify, compileRules } from "../../src/classify/index.js";
import { fakeDs } from "./fake.js";

/** An excerpt in the style of ABCD's server/bin/classifyRules.json, kept verbatim in form. */
const ABCD_RULES = [
  {
    type: "GE",
    id: "GEBYMANUFACTURER",
    description: "This scan is from GE",
    rules: [{ tag: ["0x08", "0x70"], value: "^GE MEDICAL" }],
  },
  {
    type: "SIEMENS",
    id: "SIEMENSBYMANUFACTURER",
    description: "This scan is from SIEMENS",
    rules: [{ tag: ["0x08", "0x70"], value: "^SIEMENS" }],
  },
  {
    type: "PHILIPS",
    id: "PHILIPSBYMANUFACTURER",
    description: "This scan is from Philips",
    rules: [{ tag: ["0x08", "0x70"], value: "^Philips" }],
  },
  {
    type: "mosaic",
    description: "Siemens Mosaic format",
    id: "MOSAIC",
    rules: [
      { tag: ["0x08", "0x08"], value: "MOSAIC", operator: "contains" },
      { rule: "SIEMENSBYMANUFACTURER" },
    ],
  },
  {
    type: "original",
    description: "original Image format (not derived)",
    id: "ORIGINAL",
    rules: [{ tag: ["0x08", "0x08"], value: "ORIGINAL", operator: "contains" }],
  },
  {
    type: "axial",
    description: "An axial scan",
    rules: [{ tag: ["0x20", "0x37"], value: [1, 0, 0, 0, 1, 0], operator: "approx", approxLevel: "0.0004" }],
  },
  {
    type: "sagittal",
    description: "A sagittal scan",
    rules: [{ tag: ["0x20", "0x37"], value: [0, 1, 0, 0, 0, -1], operator: "approx" }],
  },
  {
    type: "coronal",
    description: "A coronal scan",
    rules: [{ tag: ["0x20", "0x37"], value: [1, 0, 0, 0, 0, -1], operator: "approx" }],
  },
  {
    type: "localizer",
    description: "A localizer scan, has been classified before as axial, sagittal and coronal",
    rules: [
      { tag: ["ClassifyType"], value: "axial", operator: "contains" },
      { tag: ["ClassifyType"], value: "coronal", operator: "contains" },
      { tag: ["ClassifyType"], value: "sagittal", operator: "contains" },
    ],
  },
  {
    type: "oblique",
    check: "SeriesLevel",
    rules: [
      { tag: ["ClassifyType"], value: "axial", operator: "contains", negate: "yes" },
      { tag: ["ClassifyType"], value: "coronal", operator: "contains", negate: "yes" },
      { tag: ["ClassifyType"], value: "sagittal", operator: "contains", negate: "yes" },
    ],
  },
  {
    type: "ABCD-T1",
    description: "A T1 weighted image from GE with ABCD resolution",
    rules: [
      { rule: "GEBYMANUFACTURER" },
      { tag: ["AcquisitionMatrix"], value: "0, 256, 256, 0" },
      { tag: ["0x19", "0x109c"], value: "^.*mprage_promo" },
    ],
  },
  {
    type: "ABCD-T1-NORM",
    description: "A T1 weighted image from Siemens with ABCD resolution",
    rules: [
      { rule: "SIEMENSBYMANUFACTURER" },
      { tag: ["0x28", "0x10"], operator: "==", value: "256" },
      { tag: ["0x18", "0x89"], operator: "==", value: "255" },
      { tag: ["0x18", "0x24"], value: "tfl3d1_16ns" },
      { tag: ["0x08", "0x08"], operator: "contains", value: "NORM" },
      { tag: ["0x08", "0x08"], operator: "contains", negate: "yes", value: "DIS" },
    ],
  },
  {
    type: "ABCD-T1",
    description: "A T1 weighted image from Siemens with ABCD resolution",
    rules: [
      { rule: "SIEMENSBYMANUFACTURER" },
      { tag: ["0x28", "0x10"], operator: "==", value: "256" },
      { tag: ["0x18", "0x89"], operator: "==", value: "255" },
      { tag: ["0x18", "0x24"], value: "tfl3d1_16ns" },
      { tag: ["0x08", "0x08"], operator: "contains", negate: "yes", value: "NORM" },
      { tag: ["0x08", "0x08"], operator: "contains", negate: "yes", value: "DIS" },
    ],
  },
  {
    type: "ABCD-DTI",
    description: "ABCD Diffusion scan",
    rules: [
      { rule: "SIEMENSBYMANUFACTURER" },
      { rule: "ORIGINAL" },
      { rule: "MOSAIC" },
      { tag: ["0x28", "0x10"], operator: "==", value: "1260" },
      { tag: ["0x18", "0x89"], operator: "==", value: "105" },
      { tag: ["0x18", "0x24"], value: "ep_b" },
      { tag: ["NumSlices"], value: "81" },
      { tag: ["SeriesDescription"], operator: "contains", negate: "yes", value: "ABCD_QA_dMRI" },
    ],
  },
  {
    type: "ABCD-rsfMRI",
    description: "ABCD Resting State fMRI scan",
    rules: [
      { rule: "SIEMENSBYMANUFACTURER" },
      { rule: "ORIGINAL" },
      { tag: ["0x28", "0x10"], operator: "==", value: "720" },
      { tag: ["NumSlices"], value: "60" },
      { tag: ["SequenceName"], value: "epf..2d1_90" },
      { tag: ["AcquisitionLength"], value: "TA 05:11" },
    ],
  },
  {
    type: "ABCD-MRS",
    rules: [
      { rule: "SIEMENSBYMANUFACTURER" },
      { tag: ["0x08", "0x16"], value: "1.3.12.2.1107.5.9.1" },
      { tag: ["NumSlices"], operator: "==", value: "1" },
    ],
  },
  {
    type: "ABCD-Physio",
    description: "Siemens PMU physio files",
    rules: [{ rule: "SIEMENSBYMANUFACTURER" }, { tag: ["0x08", "0x16"], value: "1.3.12.2.1107.5.9.1" }],
  },
];

interface File {
  ds: Record<string, TagValue>;
  /** The series JSON as processSingleFile3 stored it (first file wins; strings for most fields). */
  json?: Record<string, unknown>;
}

function run(files: File[]): string[][] {
  const rules = compileRules(ABCD_RULES, "abcd.json");
  const out: string[][] = [];
  let types: string[] = [];
  for (const f of files) {
    types = classify(rules, { ...f.json, ClassifyType: types }, fakeDs(f.ds), types);
    out.push(types);
  }
  return out;
}

const SAG = [0, 1, 0, 0, 0, -1];

describe("an ABCD-style rule file", () => {
  it("loads, with every reference expanded", () => {
    const rules = compileRules(ABCD_RULES, "abcd.json");
    expect(rules.definitions).toHaveLength(ABCD_RULES.length);
    const dti = rules.definitions.find((d) => d.type === "ABCD-DTI")!;
    // 5 own entries + SIEMENS + ORIGINAL + MOSAIC (contains + its own SIEMENS reference).
    expect(dti.entries).toHaveLength(9);
    expect(dti.entries.map((e) => e.from).filter(Boolean)).toEqual([
      "SIEMENSBYMANUFACTURER",
      "ORIGINAL",
      "MOSAIC",
      "SIEMENSBYMANUFACTURER",
    ]);
    expect(rules.warnings).toEqual([]);
  });

  it("classifies a Siemens T1 series (oblique lags one file, as in the original)", () => {
    const t1 = {
      ds: {
        Manufacturer: "SIEMENS",
        Rows: 256,
        NumberOfPhaseEncodingSteps: 255,
        SequenceName: "*tfl3d1_16ns",
        ImageType: ["ORIGINAL", "PRIMARY", "M", "ND"],
        ImageOrientationPatient: SAG,
      },
    };
    const steps = run([t1, t1]);
    expect(steps[0]).toEqual(["SIEMENS", "original", "sagittal", "oblique", "ABCD-T1"]);
    expect(steps[1]).toEqual(["SIEMENS", "original", "sagittal", "ABCD-T1"]);
  });

  it("tells the Siemens NORM variant apart", () => {
    const norm = {
      ds: {
        Manufacturer: "SIEMENS",
        Rows: 256,
        NumberOfPhaseEncodingSteps: 255,
        SequenceName: "*tfl3d1_16ns",
        ImageType: ["ORIGINAL", "PRIMARY", "M", "NORM", "ND"],
        ImageOrientationPatient: SAG,
      },
    };
    expect(run([norm, norm]).at(-1)).toEqual(["SIEMENS", "original", "sagittal", "ABCD-T1-NORM"]);
  });

  it("classifies a GE T1 from the series JSON's AcquisitionMatrix string", () => {
    const ge = {
      ds: {
        Manufacturer: "GE MEDICAL SYSTEMS",
        ImageType: ["ORIGINAL", "PRIMARY", "OTHER"],
        "0019,109C": "research/mprage_promo",
      },
      json: { AcquisitionMatrix: "[0, 256, 256, 0]" },
    };
    expect(run([ge])[0]).toEqual(["GE", "original", "oblique", "ABCD-T1"]);
    // The same field stored as a list is stringified like Python's str(list).
    expect(run([{ ...ge, json: { AcquisitionMatrix: [0, 256, 256, 0] } }])[0]).toContain("ABCD-T1");
  });

  it("classifies a mosaic DTI and excludes the QA phantom by description", () => {
    const dti = (SeriesDescription: string) => ({
      ds: {
        Manufacturer: "SIEMENS",
        ImageType: ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE", "ND", "MOSAIC"],
        Rows: 1260,
        NumberOfPhaseEncodingSteps: 105,
        SequenceName: "*ep_b0",
        ImageOrientationPatient: [1, 0, 0, 0, 1, 0],
      },
      json: { NumSlices: "81", SeriesDescription },
    });
    expect(run([dti("ABCD_dMRI"), dti("ABCD_dMRI")]).at(-1)).toEqual([
      "SIEMENS",
      "mosaic",
      "original",
      "axial",
      "ABCD-DTI",
    ]);
    expect(run([dti("ABCD_QA_dMRI")])[0]).not.toContain("ABCD-DTI");
  });

  it('matches NumSlices "60" as a regexp literal, not as tag (0006,0000)', () => {
    const rs = {
      ds: {
        Manufacturer: "SIEMENS",
        ImageType: ["ORIGINAL", "PRIMARY", "M", "MOSAIC"],
        Rows: 720,
        "0006,0000": "trap",
      },
      json: { NumSlices: "60", SequenceName: "epfid2d1_90", AcquisitionLength: "TA 05:11" },
    };
    expect(run([rs])[0]).toContain("ABCD-rsfMRI");
  });

  it("classifies ABCD-MRS with NumSlices == 1, and also ABCD-Physio (same SOP class prefix)", () => {
    const mrs = {
      ds: { Manufacturer: "SIEMENS", SOPClassUID: "1.3.12.2.1107.5.9.1" },
      json: { NumSlices: "1" },
    };
    // No orientation at all, so the original's oblique idiom keeps "oblique" on a spectroscopy series.
    expect(run([mrs, mrs]).at(-1)).toEqual(["SIEMENS", "oblique", "ABCD-MRS", "ABCD-Physio"]);
  });

  it("deviation: a missing NumSlices makes == fail (the original's swallowed ValueError made it pass)", () => {
    const physio = { ds: { Manufacturer: "SIEMENS", SOPClassUID: "1.3.12.2.1107.5.9.1" } };
    expect(run([physio])[0]).toEqual(["SIEMENS", "oblique", "ABCD-Physio"]);
  });

  it("sees a localizer once three orientations were classified", () => {
    const f = (iop: number[]) => ({
      ds: { Manufacturer: "Philips Medical Systems", ImageOrientationPatient: iop },
    });
    const steps = run([f([1, 0, 0, 0, 1, 0]), f([1, 0, 0, 0, 0, -1]), f(SAG), f(SAG)]);
    expect(steps[3]).toEqual(["PHILIPS", "axial", "coronal", "sagittal", "localizer"]);
  });
});
