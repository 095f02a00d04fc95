/**
 * The VL Whole Slide Microscopy Image data set of one level, everything but Pixel Data (pure). The
 * attribute set is the one that validates with dciodvfy without errors: TILED_FULL,
 * one instance per level, Enhanced General Equipment placeholders, SCT codes, ICC profile in the
 * optical path. Patient, study and specimen values come only from the caller's (pseudonymized)
 * SlideDataset, never from the TIFF.
 */
import { createHash } from "node:crypto";
import { IMPLEMENTATION_VERSION_NAME } from "../dicom/part10.js";
import { EXPLICIT_LE, ITEM, VR, elementBytes, itemHeader } from "../deid/bytes.js";
import type { SlideDataset } from "./convert.js";

export const WSM_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.77.1.6";

/** A deterministic UID: "2.25." + the first 128 bits of SHA-256 over the parts, so a re-run writes the same. */
export function derivedUid(...parts: Array<string | number>): string {
  const digest = createHash("sha256").update(parts.join("\u0000")).digest();
  return `2.25.${BigInt(`0x${digest.subarray(0, 16).toString("hex")}`).toString(10)}`;
}

/** DS text of at most 16 characters. */
export function formatDs(x: number): string {
  for (let digits = 12; digits > 1; digits--) {
    const s = String(Number(x.toPrecision(digits)));
    if (s.length <= 16) return s;
  }
  return x.toExponential(6);
}

/** Values that are the same for every level of one slide. */
export interface SlideCommon {
  dataset: SlideDataset;
  frameOfReferenceUid: string;
  pyramidUid: string;
  dimensionOrganizationUid: string;
  iccProfile: Buffer;
  objectivePower?: number;
  /** Physical extent of the scanned area in mm (the level-0 size times its spacing). */
  imagedWidthMm: number;
  imagedHeightMm: number;
}

/** What differs per level. */
export interface LevelAttributes {
  sopInstanceUid: string;
  instanceNumber: number;
  imageType: [string, string, string, string];
  totalColumns: number;
  totalRows: number;
  columns: number;
  rows: number;
  frames: number;
  photometric: "RGB" | "YBR_FULL_422" | "YBR_ICT" | "YBR_RCT";
  /** Row and column spacing in mm. */
  spacing: { rows: number; columns: number };
  /** For lossy pass-through: the compression ratio and the method (ISO_10918_1, ISO_15444_1). */
  lossy?: { ratio: number; method: string };
}

type El = [tag: number, bytes: Buffer];

function pad(b: Buffer, padByte: number): Buffer {
  return b.length % 2 === 0 ? b : Buffer.concat([b, Buffer.from([padByte])]);
}
const str = (tag: number, vr: number, value: string | string[]): El => [
  tag,
  elementBytes(
    tag,
    vr,
    pad(Buffer.from(Array.isArray(value) ? value.join("\\") : value, "utf8"), vr === VR.UI ? 0 : 0x20),
    EXPLICIT_LE,
  ),
];
const us = (tag: number, value: number): El => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(value, 0);
  return [tag, elementBytes(tag, VR.US, b, EXPLICIT_LE)];
};
const ul = (tag: number, value: number): El => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value, 0);
  return [tag, elementBytes(tag, VR.UL, b, EXPLICIT_LE)];
};
const fl = (tag: number, value: number): El => {
  const b = Buffer.alloc(4);
  b.writeFloatLE(value, 0);
  return [tag, elementBytes(tag, VR.FL, b, EXPLICIT_LE)];
};
const ob = (tag: number, value: Buffer): El => [tag, elementBytes(tag, VR.OB, pad(value, 0), EXPLICIT_LE)];

/** Elements in ascending tag order, as one buffer. */
function encode(elements: El[]): Buffer {
  return Buffer.concat([...elements].sort((a, b) => a[0] - b[0]).map((e) => e[1]));
}

const seq = (tag: number, items: El[][]): El => {
  const body = items.map((item) => {
    const content = encode(item);
    return Buffer.concat([itemHeader(ITEM, content.length, EXPLICIT_LE), content]);
  });
  return [tag, elementBytes(tag, VR.SQ, Buffer.concat(body), EXPLICIT_LE)];
};

const code = (value: string, scheme: string, meaning: string): El[] => [
  str(0x00080100, VR.SH, value),
  str(0x00080102, VR.SH, scheme),
  str(0x00080104, VR.LO, meaning),
];

/** LO/SH values are limited in length; free text from metadata is cut rather than rejected. */
const cut = (s: string, n: number) => [...s.replace(/[\\\r\n]/g, " ")].slice(0, n).join("");

function specimenDetails(d: SlideDataset): string | undefined {
  const parts = [
    ...(d.stain ? [`Stain: ${d.stain}`] : []),
    ...Object.entries(d.pathology ?? {}).map(([k, v]) => `${k}: ${v}`),
  ];
  return parts.length ? parts.join("; ") : undefined;
}

/** The data set of one level, without Pixel Data (the writer appends it). */
export function levelDataset(common: SlideCommon, level: LevelAttributes): Buffer {
  const d = common.dataset;
  const acquisitionDateTime = `${d.studyDate}${d.studyTime}`;
  const frameType = level.imageType;
  const details = specimenDetails(d);
  const elements: El[] = [
    str(0x00080005, VR.CS, "ISO_IR 192"),
    str(0x00080008, VR.CS, frameType),
    str(0x00080016, VR.UI, WSM_SOP_CLASS_UID),
    str(0x00080018, VR.UI, level.sopInstanceUid),
    str(0x00080019, VR.UI, common.pyramidUid),
    str(0x00080020, VR.DA, d.studyDate),
    str(0x00080023, VR.DA, d.studyDate),
    str(0x0008002a, VR.DT, acquisitionDateTime),
    str(0x00080030, VR.TM, d.studyTime),
    str(0x00080033, VR.TM, d.studyTime),
    str(0x00080050, VR.SH, d.accessionNumber ?? ""),
    str(0x00080060, VR.CS, "SM"),
    // Enhanced General Equipment is Type 1: non-identifying placeholders, never the scanner's serial.
    str(0x00080070, VR.LO, "UNKNOWN"),
    str(0x00080090, VR.PN, d.referringPhysicianName ?? ""),
    str(0x00081090, VR.LO, "UNKNOWN"),
    str(0x00089206, VR.CS, "VOLUME"),
    str(0x00100010, VR.PN, d.patientName),
    str(0x00100020, VR.LO, d.patientId),
    str(0x00100030, VR.DA, d.patientBirthDate ?? ""),
    str(0x00100040, VR.CS, d.patientSex ?? ""),
    str(0x00181000, VR.LO, "UNKNOWN"),
    str(0x00181020, VR.LO, IMPLEMENTATION_VERSION_NAME),
    str(0x0020000d, VR.UI, d.studyInstanceUid),
    str(0x0020000e, VR.UI, d.seriesInstanceUid),
    str(0x00200010, VR.SH, d.studyId),
    str(0x00200011, VR.IS, String(d.seriesNumber ?? 1)),
    str(0x00200013, VR.IS, String(level.instanceNumber)),
    str(0x00200052, VR.UI, common.frameOfReferenceUid),
    str(0x00201040, VR.LO, "SLIDE_CORNER"),
    seq(0x00209221, [[str(0x00209164, VR.UI, common.dimensionOrganizationUid)]]),
    str(0x00209311, VR.CS, "TILED_FULL"),
    us(0x00280002, 3),
    str(0x00280004, VR.CS, level.photometric),
    us(0x00280006, 0),
    str(0x00280008, VR.IS, String(level.frames)),
    us(0x00280010, level.rows),
    us(0x00280011, level.columns),
    us(0x00280100, 8),
    us(0x00280101, 8),
    us(0x00280102, 7),
    us(0x00280103, 0),
    str(0x00280301, VR.CS, "NO"),
    str(0x00282110, VR.CS, level.lossy ? "01" : "00"),
    str(0x00400512, VR.LO, cut(d.containerIdentifier, 64)),
    seq(0x00400513, []),
    seq(0x00400518, [code("433466003", "SCT", "Microscope slide")]),
    seq(0x00400555, []),
    seq(0x00400560, [
      [
        str(0x00400551, VR.LO, cut(d.specimenIdentifier, 64)),
        str(0x00400554, VR.UI, d.specimenUid),
        seq(0x00400562, []),
        ...(d.specimenDescription ? [str(0x00400600, VR.LO, cut(d.specimenDescription, 64))] : []),
        ...(details ? [str(0x00400602, VR.UT, details)] : []),
        seq(0x00400610, []),
      ],
    ]),
    fl(0x00480001, common.imagedWidthMm),
    fl(0x00480002, common.imagedHeightMm),
    fl(0x00480003, 1),
    ul(0x00480006, level.totalColumns),
    ul(0x00480007, level.totalRows),
    seq(0x00480008, [[str(0x0040072a, VR.DS, "0"), str(0x0040073a, VR.DS, "0")]]),
    str(0x00480010, VR.CS, "NO"),
    str(0x00480011, VR.CS, "AUTO"),
    str(0x00480012, VR.CS, "NO"),
    str(0x00480102, VR.DS, ["0", "-1", "0", "-1", "0", "0"]),
    seq(0x00480105, [
      [
        seq(0x00220016, [code("111744", "DCM", "Brightfield illumination")]),
        ob(0x00282000, common.iccProfile),
        str(0x00480106, VR.SH, "1"),
        seq(0x00480108, [code("414298005", "SCT", "Full Spectrum")]),
        ...(common.objectivePower !== undefined
          ? [str(0x00480112, VR.DS, formatDs(common.objectivePower))]
          : []),
      ],
    ]),
    ul(0x00480302, 1),
    ul(0x00480303, 1),
    seq(0x52009229, [
      [
        seq(0x00289110, [
          [
            str(0x00180050, VR.DS, "0.001"),
            str(0x00280030, VR.DS, [formatDs(level.spacing.rows), formatDs(level.spacing.columns)]),
          ],
        ]),
        seq(0x00400710, [[str(0x00089007, VR.CS, frameType)]]),
        seq(0x00480207, [[str(0x00480106, VR.SH, "1")]]),
      ],
    ]),
  ];
  if (level.lossy) {
    elements.push(
      str(0x00282112, VR.DS, formatDs(level.lossy.ratio)),
      str(0x00282114, VR.CS, level.lossy.method),
    );
  }
  if (d.institutionName) elements.push(str(0x00080080, VR.LO, cut(d.institutionName, 64)));
  if (d.studyDescription) elements.push(str(0x00081030, VR.LO, cut(d.studyDescription, 64)));
  if (d.seriesDescription) elements.push(str(0x0008103e, VR.LO, cut(d.seriesDescription, 64)));
  return encode(elements);
}
