import type { TagSource, TagValue } from "../../src/dicom/header.js";
import { classify, compileRules } from "../../src/classify/index.js";

/** Just enough of the DICOM dictionary for these tests. */
const DICT: Record<string, string> = {
  ImageType: "0008,0008",
  SOPClassUID: "0008,0016",
  Modality: "0008,0060",
  Manufacturer: "0008,0070",
  ReferringPhysicianName: "0008,0090",
  SeriesDescription: "0008,103E",
  AcquisitionContrast: "0008,9209",
  PatientName: "0010,0010",
  PatientID: "0010,0020",
  ContrastBolusAgent: "0018,0010",
  ScanningSequence: "0018,0020",
  SequenceName: "0018,0024",
  EchoTime: "0018,0081",
  InversionTime: "0018,0082",
  NumberOfPhaseEncodingSteps: "0018,0089",
  AcquisitionMatrix: "0018,1310",
  DiffusionBValue: "0018,9087",
  ImageOrientationPatient: "0020,0037",
  NumberOfTemporalPositions: "0020,0105",
  Rows: "0028,0010",
  BurnedInAnnotation: "0028,0301",
};

const key = (g: number, e: number) =>
  `${g.toString(16).toUpperCase().padStart(4, "0")},${e.toString(16).toUpperCase().padStart(4, "0")}`;

/**
 * In-memory TagSource. Top-level elements are given by keyword (from DICT) or "gggg,eeee";
 * nested ones by "gggg,eeee>gggg,eeee[>gggg,eeee]" (item 0 of each sequence).
 */
export function fakeDs(elements: Record<string, TagValue> = {}): TagSource {
  const byTag = new Map<string, TagValue>();
  for (const [name, value] of Object.entries(elements)) byTag.set(DICT[name] ?? name.toUpperCase(), value);
  return {
    keyword: (name) => (DICT[name] === undefined ? undefined : byTag.get(DICT[name])),
    tag: (g, e) => byTag.get(key(g, e)),
    nested: (path) => byTag.get(path.map(([g, e]) => key(g, e)).join(">")),
  };
}

/** Compile a one-definition rule set of type "X" from the given entries. */
function single(...rules: unknown[]) {
  return compileRules([{ type: "X", rules }]);
}

/** Does a one-definition rule set with these entries match? */
export function matches(
  entries: unknown[],
  elements: Record<string, TagValue> = {},
  series: Record<string, unknown> = {},
  previous: string[] = [],
): boolean {
  return classify(single(...entries), series, fakeDs(elements), previous).includes("X");
}
