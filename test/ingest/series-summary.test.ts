import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { readHeader } from "../../src/dicom/header.js";
import { mergeSummary, summarizeFile, type SeriesSummary } from "../../src/ingest/series-summary.js";

type Elements = Record<string, { vr: string; Value?: unknown[] }>;
const dcmjs = createRequire(import.meta.url)("dcmjs") as {
  data: { DicomDict: new (meta: Elements) => { dict: Elements; write(): ArrayBuffer } };
};

const EXPLICIT = "1.2.840.10008.1.2.1";
const IMPLICIT = "1.2.840.10008.1.2";

function file(elements: Elements, ts: string) {
  const dict = new dcmjs.data.DicomDict({
    "00020001": { vr: "OB", Value: [new Uint8Array([0, 1]).buffer] },
    "00020002": { vr: "UI", Value: ["1.2.840.10008.5.1.4.1.1.4"] },
    "00020003": { vr: "UI", Value: ["1.2.826.0.1.3680043.8.498.1"] },
    "00020010": { vr: "UI", Value: [ts] },
  });
  dict.dict = structuredClone(elements);
  return readHeader(new Uint8Array(dict.write()));
}
const el = (vr: string, ...values: unknown[]) => ({ vr, Value: values });

/** A minimal CSA2 header: every tag with its values, no padding items. */
function csa(tags: Record<string, string[]>): ArrayBuffer {
  const chunks: Buffer[] = [Buffer.from("SV10\x04\x03\x02\x01", "latin1")];
  const int32 = (...values: number[]) => chunks.push(Buffer.from(new Int32Array(values).buffer));
  int32(Object.keys(tags).length, 77);
  for (const [name, values] of Object.entries(tags)) {
    const head = Buffer.alloc(84);
    head.write(name, 0, "latin1");
    head.writeInt32LE(values.length, 64);
    head.writeInt32LE(values.length, 76);
    chunks.push(head);
    for (const value of values) {
      const data = Buffer.from(value + "\0", "latin1");
      int32(data.length, data.length, 77, data.length);
      chunks.push(data, Buffer.alloc((4 - (data.length % 4)) % 4));
    }
  }
  const bytes = Buffer.concat(chunks);
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
}

const PROTOCOL = [
  "### ASCCONV BEGIN ###",
  'sProtConsistencyInfo.tMeasuredBaselineString\t = \t""N4_VE11C_LATEST_20160120""',
  "sGroupArray.asGroup[0].nSize\t = \t60",
  'sWipMemBlock.tFree\t = \t""0c6a9b2e-1d3f-4e5a-8b7c-9d0e1f2a3b4c""',
  "lSequenceID\t = \t1234",
  "### ASCCONV END ###",
].join("\n");

const STUDY = "1.2.826.0.1.3680043.8.498.10";
const SERIES = "1.2.826.0.1.3680043.8.498.11";
const SOP = "1.2.826.0.1.3680043.8.498.12";
const MR_CLASS = "1.2.840.10008.5.1.4.1.1.4";

const SIEMENS_DWI: Elements = {
  "00080008": el("CS", "ORIGINAL", "PRIMARY", "DIFFUSION", "NONE", "ND", "MOSAIC"),
  "00080016": el("UI", MR_CLASS),
  "00080018": el("UI", SOP),
  "00080020": el("DA", "20240102"),
  "00080030": el("TM", "101500.123"),
  "00080031": el("TM", "102000"),
  "00080050": el("SH"),
  "00080060": el("CS", "MR"),
  "00080070": el("LO", "SIEMENS"),
  "00080080": el("LO", "Haukeland"),
  "00081010": el("SH", "AWP45011"),
  "0008103E": el("LO", "ep2d_diff_mddw"),
  "00081070": el("PN", { Alphabetic: "Op^One" }),
  "00081090": el("LO", "Prisma"),
  "00100010": el("PN", { Alphabetic: "Doe^Jane" }),
  "00100020": el("LO", "PID123"),
  "00100040": el("CS", "F"),
  "00180020": el("CS", "EP"),
  "00180021": el("CS", "SK", "SP"),
  "00180022": el("CS", "PFP", "FS"),
  "00180024": el("SH", "*epse2d1_86"),
  "00180050": el("DS", "2.5"),
  "00180080": el("DS", "3200"),
  "00180081": el("DS", "89"),
  "00180088": el("DS", "2.5"),
  "00181020": el("LO", "syngo MR E11"),
  "00181310": el("US", 0, 86, 86, 0),
  "0020000D": el("UI", STUDY),
  "0020000E": el("UI", SERIES),
  "00200010": el("SH", "S1"),
  "00200011": el("IS", "9"),
  "00200013": el("IS", "12"),
  "00201041": el("DS", "-12.5"),
  "00290010": el("LO", "SIEMENS CSA HEADER"),
  "00291010": el(
    "OB",
    csa({
      B_value: ["1000"],
      DiffusionDirectionality: ["DIRECTIONAL"],
      DiffusionGradientDirection: ["0.57735027", "-0.57735027", "0.57735027"],
      PhaseEncodingDirectionPositive: ["1"],
    }),
  ),
  "00291020": el("OB", csa({ MrPhoenixProtocol: [PROTOCOL] })),
  "00510010": el("LO", "SIEMENS MR HEADER"),
  "0051100A": el("SH", "TA 04:12"),
  "0051100F": el("LO", "HEA;HEP"),
  "7FE00010": el("OW", new ArrayBuffer(64)),
};

const CONN = { callingAe: ' "PRISMA\\1" ', calledAe: "FIONA", peer: "10.0.0.5" };

describe("summarizeFile", () => {
  it.each([EXPLICIT, IMPLICIT])("builds FIONA's series JSON for a Siemens DWI file (%s)", (ts) => {
    expect(summarizeFile(file(SIEMENS_DWI, ts), CONN)).toEqual({
      IncomingConnection: { AETitleCaller: "PRISMA1", AETitleCalled: "FIONA", CallerIP: "10.0.0.5" },
      AccessionNumber: "",
      AcquisitionLength: "TA 04:12",
      AcquisitionMatrix: "[0, 86, 86, 0]",
      ActiveCoils: "HEA;HEP",
      EchoTime: "89",
      ImageType: "['ORIGINAL', 'PRIMARY', 'DIFFUSION', 'NONE', 'ND', 'MOSAIC']",
      InstanceNumber: "12",
      InstitutionName: "Haukeland",
      Manufacturer: "SIEMENS",
      ManufacturerModelName: "Prisma",
      MeasID: "1234",
      Modality: "MR",
      NumSlices: "60",
      OSLevel: "VE11C",
      OperatorsName: "Op^One",
      PatientID: "PID123",
      PatientName: "Doe^Jane",
      PatientSex: "F",
      PhaseEncodingDirectionPositive: "1",
      RepetitionTime: "3200",
      SOPClassUID: MR_CLASS,
      ScanOptions: "['PFP', 'FS']",
      ScanningSequence: "EP",
      SequenceName: "*epse2d1_86",
      SequenceVariant: "['SK', 'SP']",
      SeriesDescription: "ep2d_diff_mddw",
      SeriesInstanceUID: SERIES,
      SeriesNumber: "9",
      SeriesTime: "102000",
      SliceLocation: "-12.5",
      SliceSpacing: "2.5",
      SliceThickness: "2.5",
      StationName: "AWP45011",
      StudyDate: "20240102",
      StudyID: "S1",
      StudyInstanceUID: STUDY,
      StudyTime: "101500.123",
      siemensDiffusionInformation: [
        {
          B_value: "1000",
          SOPInstanceUID: SOP,
          InstanceNumber: "12",
          DiffusionDirectionality: "DIRECTIONAL",
          DiffusionGradientDirection: ["0.57735027", "-0.57735027", "0.57735027"],
        },
      ],
      siemensUUID: "0c6a9b2e-1d3f-4e5a-8b7c-9d0e1f2a3b4c",
    });
  });

  it("starts an empty diffusion list for Siemens images without directionality", () => {
    const plain = { ...SIEMENS_DWI, "00291010": el("OB", csa({ PhaseEncodingDirectionPositive: ["0"] })) };
    const summary = summarizeFile(file(plain, EXPLICIT), CONN);
    expect(summary.siemensDiffusionInformation).toEqual([]);
    expect(summary.PhaseEncodingDirectionPositive).toBe("0");
  });

  it("reads GE and Philips private fields, and the GE software release", () => {
    const ge: Elements = {
      "00080060": el("CS", "MR"),
      "00080070": el("LO", "GE MEDICAL SYSTEMS"),
      "00181020": el("LO", "27", "LX", "MR Software release:DV26.0_R03_1831.b"),
      "00190010": el("LO", "GEMS_ACQU_01"),
      "0019105A": el("FL", 2.4),
      "0019109C": el("LO", "epi2"),
      "001910BB": el("DS", "0.7071"),
      "00200105": el("IS", "1"),
      "00201002": el("IS", "40"),
      "00210010": el("LO", "GEMS_RELA_01"),
      "0021104F": el("SS", 40),
      "00430010": el("LO", "GEMS_PARM_01"),
      "00431039": el("IS", 1000, 8, 0, 0),
      "20010010": el("LO", "Philips Imaging DD 001"),
      "20011020": el("LO", "SE"),
    };
    for (const ts of [EXPLICIT, IMPLICIT]) {
      const summary = summarizeFile(file(ge, ts), { callingAe: "GE", calledAe: "FIONA", peer: "" });
      expect(summary).toMatchObject({
        IncomingConnection: { AETitleCaller: "GE", AETitleCalled: "FIONA", CallerIP: "0.0.0.0" },
        OSLevel: "DV26.0",
        Private0019_105a: "2.4000000953674316",
        PulseSequenceName: "epi2",
        Private0019_10BB: "0.7071",
        Slices: "40",
        Private0043_1039: [1000, 8, 0, 0],
        NumberOfTemporalPositions: "1",
        ImagesInAcquisition: "40",
        SequenceType: "SE",
      });
      expect(summary.siemensDiffusionInformation).toBeUndefined();
      expect(summary.PhaseEncodingDirectionPositive).toBeUndefined();
    }
  });

  it("leaves out absent tags and the caller's fields", () => {
    const summary = summarizeFile(file({ "00080060": el("CS", "CT") }, EXPLICIT), CONN);
    expect(Object.keys(summary).sort()).toEqual(["IncomingConnection", "Modality"]);
  });
});

describe("mergeSummary", () => {
  const first = summarizeFile(file(SIEMENS_DWI, EXPLICIT), CONN);
  const second = (changes: Elements) => summarizeFile(file({ ...SIEMENS_DWI, ...changes }, EXPLICIT), CONN);

  it("copies the first file's summary", () => {
    const merged = mergeSummary(undefined, first);
    expect(merged).toEqual(first);
    expect(merged).not.toBe(first);
  });

  it("keeps the first file's values except the per-file fields", () => {
    const existing: SeriesSummary = {
      ...mergeSummary(undefined, first),
      NumFiles: "1",
      ClassifyType: ["dwi"],
    };
    const before = structuredClone(existing);
    const next = second({
      "0008103E": el("LO", "renamed"),
      "00080018": el("UI", "1.2.826.0.1.3680043.8.498.13"),
      "00201041": el("DS", "-20.0"),
      "00291020": el("OB", csa({ MrPhoenixProtocol: [PROTOCOL.replace("1234", "1235")] })),
    });
    const merged = mergeSummary(existing, next);
    expect(existing).toEqual(before);
    expect(merged.SeriesDescription).toBe("ep2d_diff_mddw");
    expect(merged.SliceLocation).toBe("-20.0");
    expect(merged.MeasID).toBe("1235");
    expect(merged.NumFiles).toBe("1");
    expect(merged.ClassifyType).toEqual(["dwi"]);
    expect(merged.siemensDiffusionInformation?.map((d) => d.SOPInstanceUID)).toEqual([
      SOP,
      "1.2.826.0.1.3680043.8.498.13",
    ]);
    // A larger slice location does not replace the smaller one; a re-sent SOP is not listed twice.
    const again = mergeSummary(merged, second({ "00201041": el("DS", "5") }));
    expect(again.SliceLocation).toBe("-20.0");
    expect(again.siemensDiffusionInformation).toHaveLength(2);
  });

  it("follows FIONA when fields are missing or not numbers", () => {
    const bare = { ...first };
    delete bare.SliceLocation;
    delete bare.siemensDiffusionInformation;
    const merged = mergeSummary(bare, second({ "00201041": el("DS", "-30") }));
    expect(merged.SliceLocation).toBeUndefined();
    expect(merged.siemensDiffusionInformation).toHaveLength(1);
    expect(merged.NumFiles).toBeUndefined();
    expect(merged.ClassifyType).toBeUndefined();
    const text = mergeSummary({ ...first, SliceLocation: "" }, second({ "00201041": el("DS", "-30") }));
    expect(text.SliceLocation).toBe("");
    const withStudy = mergeSummary({ ...first, StudyInstanceUID: "1.2.3" }, first);
    expect(withStudy.StudyInstanceUID).toBe(STUDY);
  });
});
