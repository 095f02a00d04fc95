import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import type { TagValue } from "../../src/dicom/header.js";
import { classify, loadRulesFile, type CompiledRules } from "../../src/classify/index.js";
import { fakeDs } from "./fake.js";

const SHIPPED = fileURLToPath(new URL("../../rules/classifyRules.json", import.meta.url));

let rules: CompiledRules;
beforeAll(async () => {
  rules = await loadRulesFile(SHIPPED);
});

function seriesOf(files: Array<Record<string, TagValue>>, json: Record<string, unknown> = {}): string[] {
  let types: string[] = [];
  files.forEach((elements, i) => {
    types = classify(rules, { ...json, NumFiles: String(i + 1) }, fakeDs(elements), types);
  });
  return types;
}

const MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4";
const AXIAL = [1, 0, 0, 0, 1, 0];

describe("the shipped rules/classifyRules.json", () => {
  it("loads without warnings", () => {
    expect(rules.definitions.length).toBeGreaterThan(30);
    expect(rules.warnings).toEqual([]);
    for (const def of rules.definitions) expect(def.description, `definition[${def.index}]`).toBeTruthy();
  });

  it("classifies an axial Siemens MR T1", () => {
    const file = {
      Manufacturer: "SIEMENS",
      Modality: "MR",
      SOPClassUID: MR_IMAGE,
      SeriesDescription: "t1_mprage_tra",
      ImageType: ["ORIGINAL", "PRIMARY", "M", "ND"],
      ScanningSequence: ["GR", "IR"],
      ImageOrientationPatient: AXIAL,
    };
    expect(seriesOf([file, file, file])).toEqual(["SIEMENS", "MR", "axial", "T1"]);
  });

  it("classifies an oblique GE T2 FLAIR from the first file on", () => {
    const file = {
      Manufacturer: "GE MEDICAL SYSTEMS",
      Modality: "MR",
      SeriesDescription: "Ax T2 FLAIR",
      ImageType: ["ORIGINAL", "PRIMARY", "OTHER"],
      InversionTime: 2500,
      EchoTime: 120,
      ImageOrientationPatient: [0.996, 0.087, 0, -0.087, 0.996, 0],
    };
    expect(seriesOf([file])).toEqual(["GE", "MR", "oblique", "T2", "FLAIR"]);
    expect(seriesOf([file, file])).toEqual(["GE", "MR", "oblique", "T2", "FLAIR"]);
  });

  it("classifies DWI and fMRI", () => {
    const dwi = {
      Manufacturer: "Philips Medical Systems",
      Modality: "MR",
      SeriesDescription: "DWI_b1000",
      DiffusionBValue: 1000,
      ImageOrientationPatient: AXIAL,
    };
    expect(seriesOf([dwi])).toEqual(["PHILIPS", "MR", "axial", "DWI"]);
    const bold = {
      Manufacturer: "SIEMENS",
      Modality: "MR",
      SeriesDescription: "rest_state",
      ScanningSequence: "EP",
      SequenceName: "epfid2d1_64",
      ImageType: ["ORIGINAL", "PRIMARY", "M", "MOSAIC"],
      ImageOrientationPatient: AXIAL,
    };
    expect(seriesOf([bold])).toContain("fMRI");
    expect(seriesOf([{ ...bold, SeriesDescription: "ep2d_mosaic" }])).not.toContain("fMRI");
    expect(seriesOf(Array(51).fill({ ...bold, SeriesDescription: "ep2d_mosaic" }))).toContain("fMRI");
  });

  it("classifies a CT with and without contrast", () => {
    const ct = {
      Manufacturer: "CANON_MEC",
      Modality: "CT",
      ImageType: ["ORIGINAL", "PRIMARY", "AXIAL"],
      ImageOrientationPatient: AXIAL,
    };
    expect(seriesOf([ct])).toEqual(["CANON", "CT", "axial", "CT-noncontrast"]);
    expect(seriesOf([{ ...ct, ContrastBolusAgent: "Omnipaque 350" }])).toEqual([
      "CANON",
      "CT",
      "contrast",
      "axial",
      "CT-contrast",
    ]);
  });

  it("classifies a structured report and nothing else about it", () => {
    expect(
      seriesOf([{ Manufacturer: "SIEMENS", Modality: "SR", SOPClassUID: "1.2.840.10008.5.1.4.1.1.88.67" }]),
    ).toEqual(["SIEMENS", "SR"]);
  });

  it("flags a secondary capture with burned-in annotation", () => {
    const sc = {
      Manufacturer: "GE MEDICAL SYSTEMS",
      Modality: "CT",
      SOPClassUID: "1.2.840.10008.5.1.4.1.1.7",
      SeriesDescription: "Dose Report",
      ImageType: ["DERIVED", "SECONDARY", "SCREEN SAVE"],
      BurnedInAnnotation: "YES",
    };
    expect(seriesOf([sc])).toEqual(["GE", "CT", "SecondaryCapture", "CT-noncontrast", "CHECKBURNEDINFO"]);
  });

  it("flags ultrasound and presentation states correctly", () => {
    expect(seriesOf([{ Modality: "US" }])).toEqual(["US", "CHECKBURNEDINFO"]);
    expect(seriesOf([{ Modality: "PR", SOPClassUID: "1.2.840.10008.5.1.4.1.1.11.1" }])).toEqual([
      "PresentationState",
    ]);
  });

  it("classifies a localizer by ImageType, by description, and by three orientations", () => {
    expect(seriesOf([{ Modality: "CT", ImageType: ["ORIGINAL", "PRIMARY", "LOCALIZER"] }])).toContain(
      "localizer",
    );
    expect(seriesOf([{ Modality: "MR", SeriesDescription: "AAHead_Scout_64ch" }])).toContain("localizer");
    const plane = (iop: number[]) => ({
      Modality: "MR",
      SeriesDescription: "3pl loc",
      ImageOrientationPatient: iop,
    });
    const tri = seriesOf([plane(AXIAL), plane([1, 0, 0, 0, 0, -1]), plane([0, 1, 0, 0, 0, -1])]);
    expect(tri).toEqual(["MR", "axial", "localizer", "coronal", "sagittal"]);
    const unnamed = (iop: number[]) => ({ Modality: "MR", ImageOrientationPatient: iop });
    const steps = seriesOf([
      unnamed(AXIAL),
      unnamed([1, 0, 0, 0, 0, -1]),
      unnamed([0, 1, 0, 0, 0, -1]),
      unnamed(AXIAL),
    ]);
    expect(steps).toEqual(["MR", "axial", "coronal", "sagittal", "localizer"]);
  });
});
