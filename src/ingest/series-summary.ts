/**
 * The per-series JSON of FIONA's processSingleFile3.py, field names unchanged.
 * Values are rendered as Python's str() of the pydicom value, so rules written against FIONA's JSON
 * (e.g. ImageType "['ORIGINAL', 'PRIMARY']") still match. A field is present only when its tag is.
 * NumFiles and ClassifyType are set by the caller.
 */
import type { DicomHeader } from "../dicom/header.js";
import { csaValue, phoenixFields, readSiemensCsa, type CsaValue } from "../dicom/siemens-csa.js";

export interface IncomingConnection {
  AETitleCaller: string;
  AETitleCalled: string;
  CallerIP: string;
}

export interface SiemensDiffusionEntry {
  B_value?: CsaValue;
  SOPInstanceUID?: string;
  InstanceNumber?: string;
  DiffusionDirectionality?: CsaValue;
  DiffusionGradientDirection?: CsaValue;
}

export interface SeriesSummary {
  IncomingConnection?: IncomingConnection;
  StudyInstanceUID?: string;
  SeriesInstanceUID?: string;
  Modality?: string;
  Manufacturer?: string;
  SeriesDescription?: string;
  SeriesNumber?: string;
  ImageType?: string;
  SliceLocation?: string;
  OSLevel?: string;
  siemensUUID?: string;
  NumSlices?: string;
  MeasID?: string;
  PhaseEncodingDirectionPositive?: CsaValue;
  /** GE (0043,1039) slop_int_6..9; element 0 is the b-value. */
  Private0043_1039?: Array<string | number> | string | number;
  siemensDiffusionInformation?: SiemensDiffusionEntry[];
  /** Files received, as a string (set by the caller). */
  NumFiles?: string;
  /** Classification result (set by the caller). */
  ClassifyType?: string[];
  [field: string]: unknown;
}

/** JSON field -> element ("ggggeeee"); FIONA's field names, which are not always the DICOM keyword. */
const FIELDS: Record<string, string> = {
  Manufacturer: "00080070",
  ManufacturerModelName: "00081090",
  AcquisitionMatrix: "00181310",
  AcquisitionLength: "0051100A",
  Modality: "00080060",
  StudyInstanceUID: "0020000D",
  SeriesInstanceUID: "0020000E",
  SeriesTime: "00080031",
  PatientID: "00100020",
  SOPClassUID: "00080016",
  PatientName: "00100010",
  PatientSex: "00100040",
  InstitutionName: "00080080",
  StudyDate: "00080020",
  StudyTime: "00080030",
  StudyDescription: "00081030",
  StationName: "00081010",
  SeriesDescription: "0008103E",
  SequenceName: "00180024",
  ScanOptions: "00180022",
  EchoTime: "00180081",
  RepetitionTime: "00180080",
  SeriesNumber: "00200011",
  InstanceNumber: "00200013",
  SliceThickness: "00180050",
  ImageType: "00080008",
  SliceSpacing: "00180088",
  Slices: "0021104F",
  ScanningSequence: "00180020",
  SequenceVariant: "00180021",
  SequenceType: "20011020",
  PulseSequenceName: "0019109C",
  ActiveCoils: "0051100F",
  Private0019_105a: "0019105A",
  Private0019_10BB: "001910BB",
  SliceLocation: "00201041",
  ImagesInAcquisition: "00201002",
  NumberOfTemporalPositions: "00200105",
  AccessionNumber: "00080050",
  // Bergen additions.
  OperatorsName: "00081070",
  StudyID: "00200010",
};

const NUMERIC_VRS = new Set(["DS", "IS", "US", "SS", "UL", "SL", "FL", "FD", "SV", "UV"]);
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function summarizeFile(
  header: DicomHeader,
  conn: { callingAe: string; calledAe: string; peer: string },
): SeriesSummary {
  const summary: SeriesSummary = {
    IncomingConnection: {
      AETitleCaller: cleanAe(conn.callingAe),
      AETitleCalled: cleanAe(conn.calledAe),
      CallerIP: conn.peer === "" ? "0.0.0.0" : conn.peer,
    },
  };
  for (const [field, tag] of Object.entries(FIELDS)) {
    const value = pyStr(header, tag);
    if (value !== undefined) summary[field] = value;
  }
  const geB = header.tag(0x0043, 0x1039);
  if (geB !== undefined) summary.Private0043_1039 = Array.isArray(geB) ? geB.map(numberIfDecimal) : geB;
  const release = /release:([^_"]+)/.exec(pyStr(header, "00181020") ?? "")?.[1];
  if (release) summary.OSLevel = release;

  const csa = readSiemensCsa(header);
  Object.assign(summary, phoenixFields(csa.series));
  if (csa.image && csa.image.size > 0) {
    const entry: SiemensDiffusionEntry = {};
    const bValue = csaValue(csa.image, "B_value");
    if (bValue !== undefined) {
      entry.B_value = bValue;
      entry.SOPInstanceUID = pyStr(header, "00080018");
      entry.InstanceNumber = pyStr(header, "00200013");
    }
    entry.DiffusionDirectionality = csaValue(csa.image, "DiffusionDirectionality");
    entry.DiffusionGradientDirection = csaValue(csa.image, "DiffusionGradientDirection");
    const phase = csaValue(csa.image, "PhaseEncodingDirectionPositive");
    if (phase !== undefined) summary.PhaseEncodingDirectionPositive = phase;
    const directional = entry.DiffusionDirectionality !== undefined && entry.DiffusionDirectionality !== "";
    summary.siemensDiffusionInformation = directional ? [dropUndefined(entry)] : [];
  }
  return summary;
}

/**
 * First file wins, except: the smaller SliceLocation is kept, MeasID and StudyInstanceUID are
 * overwritten, and diffusion entries are appended (once per SOPInstanceUID). Inputs are not modified.
 */
export function mergeSummary(existing: SeriesSummary | undefined, fromFile: SeriesSummary): SeriesSummary {
  if (!existing) return structuredClone(fromFile);
  const merged = structuredClone(existing);
  if (fromFile.SliceLocation !== undefined && merged.SliceLocation !== undefined) {
    const kept = pyFloat(merged.SliceLocation);
    const current = pyFloat(fromFile.SliceLocation);
    if (kept !== undefined && current !== undefined && kept > current)
      merged.SliceLocation = fromFile.SliceLocation;
  }
  if (fromFile.MeasID !== undefined) merged.MeasID = fromFile.MeasID;
  if (fromFile.StudyInstanceUID !== undefined) merged.StudyInstanceUID = fromFile.StudyInstanceUID;
  if (fromFile.siemensDiffusionInformation) {
    const list = Array.isArray(merged.siemensDiffusionInformation) ? merged.siemensDiffusionInformation : [];
    const seen = new Set(list.map((e) => e.SOPInstanceUID).filter((uid) => uid !== undefined));
    for (const entry of fromFile.siemensDiffusionInformation) {
      if (entry.SOPInstanceUID !== undefined && seen.has(entry.SOPInstanceUID)) continue;
      if (entry.SOPInstanceUID !== undefined) seen.add(entry.SOPInstanceUID);
      list.push(structuredClone(entry));
    }
    merged.siemensDiffusionInformation = list;
  }
  return merged;
}

/** FIONA strips quotes, spaces and backslashes from AE titles read from its pipe. */
function cleanAe(ae: string): string {
  return ae.replace(/["\s\\]/g, "");
}

/** Python's str() of a pydicom value: the text of one value, or a list rendering for several. */
function pyStr(header: DicomHeader, tag: string): string | undefined {
  const parts = header.strings(tag);
  if (parts === undefined) return undefined;
  const vr = header.vr(tag) ?? "UN";
  const floats = vr === "FL" || vr === "FD";
  const shown = floats ? parts.map((p) => pythonFloat(Number(p))) : parts;
  if (shown.length === 0) return "";
  if (shown.length === 1) return shown[0];
  const items = NUMERIC_VRS.has(vr) ? shown : shown.map(pythonRepr);
  return `[${items.join(", ")}]`;
}

/** Python's float repr: "1.0" for integral values, exponents from 1e16 up and below 1e-4. */
function pythonFloat(n: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? "nan" : n > 0 ? "inf" : "-inf";
  const abs = Math.abs(n);
  if (abs !== 0 && (abs >= 1e16 || abs < 1e-4)) {
    const [mantissa, exponent] = n.toExponential().split("e");
    const e = Number(exponent);
    return `${mantissa}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  }
  const text = String(n);
  return text.includes(".") || text.includes("e") ? text : `${text}.0`;
}

/** Python's repr() of a str, e.g. 'ORIGINAL' or "O'NEIL". */
function pythonRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = "";
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === "\\" || ch === quote) out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f) out += "\\x" + code.toString(16).padStart(2, "0");
    else out += ch;
  }
  return quote + out + quote;
}

function pyFloat(value: unknown): number | undefined {
  const s = String(value).trim();
  return DECIMAL.test(s) ? Number(s) : undefined;
}

function numberIfDecimal(v: string | number): string | number {
  return typeof v === "string" && DECIMAL.test(v) ? Number(v) : v;
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
