/**
 * Synthetic DICOM study generator for ingest tests and benchmarks.
 *
 * ```ts
 * const study = generateStudy({ outDir, seed: "bench-1", modality: "MR", series: 4, instancesPerSeries: 500 });
 * study.files            // every Part-10 file written, series by series
 * study.studyInstanceUid // deterministic from the seed
 * study.series[0].sopInstanceUids
 * ```
 *
 * What a file contains: patient/study/series/equipment/image modules with PHI marker values (see
 * {@link DEFAULT_PHI}; pass your own to search for leaks), classification inputs (ImageType,
 * ImageOrientationPatient, SeriesDescription, Manufacturer, MR/CT acquisition parameters), nested
 * sequences (OtherPatientIDsSequence, RequestAttributesSequence with a nested ReferencedStudySequence
 * and ScheduledProtocolCodeSequence, ReferencedStudySequence), two private blocks (a creator with
 * LO/US/DS/OB elements and a private SQ whose items hold private elements, PHI copies and a nested SQ)
 * and pixel data (16-bit MONOCHROME2) of about `fileSize` bytes. SR instances carry a ContentSequence
 * instead of pixel data.
 *
 * UIDs are `2.25.<39 digits>` derived from the seed, so the same options give the same UIDs (and, with
 * the default pattern fill, the same bytes). Per-instance values are fixed-width so they can be patched
 * in place: InstanceNumber is zero-padded to 6 digits ("000042", at most 999999 instances per series)
 * and the z of ImagePositionPatient/SliceLocation is "-0060.00"-style; no value carries padding
 * spaces beyond DICOM's even-length rule, so dcmtk sends the values unchanged. Speed: each series is encoded once with dcmjs; instances
 * are produced by patching fixed-width fields (SOP Instance UID, InstanceNumber, position, pixel stamp)
 * in that template and written with one synchronous write each, so 2000 files of 128 KB take well
 * under a second on a warm disk.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);

/** A denaturalized dcmjs element: `{ vr, Value }`, keyed by 8-digit upper-case hex tag. */
export interface DicomElement {
  vr: string;
  Value?: unknown[];
}
export type DicomElements = Record<string, DicomElement>;

interface DcmjsSubset {
  data: {
    DicomDict: new (meta: DicomElements) => {
      dict: DicomElements;
      write(options?: Record<string, unknown>): ArrayBuffer;
    };
  };
}
const dcmjs = require("dcmjs") as DcmjsSubset;

export const TRANSFER_SYNTAX = {
  "explicit-le": "1.2.840.10008.1.2.1",
  "implicit-le": "1.2.840.10008.1.2",
  "explicit-be": "1.2.840.10008.1.2.2",
} as const;
export type TransferSyntaxName = keyof typeof TRANSFER_SYNTAX;

const SOP_CLASS = {
  MR: "1.2.840.10008.5.1.4.1.1.4",
  CT: "1.2.840.10008.5.1.4.1.1.2",
  SC: "1.2.840.10008.5.1.4.1.1.7",
  SR: "1.2.840.10008.5.1.4.1.1.88.11",
} as const;
export type GeneratedModality = keyof typeof SOP_CLASS;

/** Identifying values written into every instance (top level, nested sequences and private elements). */
export interface PhiMarkers {
  patientName: string;
  patientId: string;
  /** DA, so keep it 8 digits if you want a valid file. */
  patientBirthDate: string;
  accessionNumber: string;
  referringPhysicianName: string;
  institutionName: string;
  institutionAddress: string;
  patientAddress: string;
  otherPatientId: string;
  operatorsName: string;
  performingPhysicianName: string;
  stationName: string;
}

export const DEFAULT_PHI: PhiMarkers = {
  patientName: "PHIMARK^PATIENTNAME",
  patientId: "PHIMARK_PID",
  patientBirthDate: "19010203",
  accessionNumber: "PHIMARK_ACC",
  referringPhysicianName: "PHIMARK^REFERRER",
  institutionName: "PHIMARK_INSTITUTION",
  institutionAddress: "PHIMARK_INST_ADDRESS",
  patientAddress: "PHIMARK_PAT_ADDRESS",
  otherPatientId: "PHIMARK_OTHERPID",
  operatorsName: "PHIMARK^OPERATOR",
  performingPhysicianName: "PHIMARK^PERFORMER",
  stationName: "PHIMARK_STATION",
};

/** Private creator strings used by the generator (block 0x10 of groups 0009 and 0029). */
export const PRIVATE_CREATORS = { main: "FIONA TEST PRIVATE", csa: "SIEMENS CSA HEADER" } as const;

export type Orientation = "axial" | "sagittal" | "coronal";

export interface SeriesSpec {
  description?: string;
  /** Instances in this series; defaults to GenerateOptions.instancesPerSeries. */
  instances?: number;
  imageType?: string[];
  orientation?: Orientation | [number, number, number, number, number, number];
  seriesNumber?: number;
  /** Extra or replacement top-level elements, keyed by 8-digit hex tag (e.g. "00180024"). */
  extra?: DicomElements;
}

export interface GenerateOptions {
  /** Directory to write into (created); files go to `<outDir>/series-<NN>/IM<NNNNN>.dcm`. */
  outDir: string;
  /** Seed for every UID (default "fiona"). Same seed and options => same UIDs. */
  seed?: string | number;
  modality?: GeneratedModality;
  /** Number of series (default 1) or one spec per series. */
  series?: number | SeriesSpec[];
  instancesPerSeries?: number;
  /** Approximate pixel data size per instance in bytes (default 128 KiB = 256x256x16 bit). Ignored for SR. */
  fileSize?: number;
  /** "pattern" (default, deterministic, fast) or "random" (seeded PRNG, incompressible). */
  pixelFill?: "pattern" | "random";
  transferSyntax?: TransferSyntaxName;
  /** Private blocks (default true). */
  privateTags?: boolean;
  /** OtherPatientIDsSequence, RequestAttributesSequence (nested), ReferencedStudySequence (default true). */
  nestedSequences?: boolean;
  phi?: Partial<PhiMarkers>;
  manufacturer?: string;
  manufacturerModelName?: string;
  studyDescription?: string;
  /** Overrides the derived StudyInstanceUID, written verbatim (may be invalid on purpose). */
  studyInstanceUid?: string;
  studyDate?: string;
  studyTime?: string;
}

export interface GeneratedSeries {
  seriesInstanceUid: string;
  seriesNumber: number;
  description: string;
  files: string[];
  sopInstanceUids: string[];
}

export interface GeneratedStudy {
  dir: string;
  modality: GeneratedModality;
  sopClassUid: string;
  transferSyntaxUid: string;
  studyInstanceUid: string;
  /** One per series, in series order. */
  seriesInstanceUids: string[];
  /** Every instance, in the same order as `files`. */
  sopInstanceUids: string[];
  files: string[];
  series: GeneratedSeries[];
  phi: PhiMarkers;
  /** Sum of file sizes in bytes. */
  totalBytes: number;
}

/**
 * A deterministic UID `2.25.<integer>` from a seed and parts. The integer is 128 bits of SHA-256 with
 * the top bit set (always 39 digits, so UIDs are 44 characters) and UUID version 8 / variant bits.
 */
export function deterministicUid(seed: string | number, ...parts: Array<string | number>): string {
  const hash = createHash("sha256")
    .update([String(seed), ...parts.map(String)].join("\u0000"))
    .digest();
  const b = hash.subarray(0, 16);
  b[0] = (b[0] ?? 0) | 0x80;
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x80;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  return `2.25.${BigInt(`0x${b.toString("hex")}`).toString(10)}`;
}

const UID_PLACEHOLDER = "@".repeat(44);
const INUM_PLACEHOLDER = "@INUM@";
const POS_PLACEHOLDER = "@POS@@@@";
const GENERATOR_IMPLEMENTATION_UID = "2.25.281582906474129837624718453912076436523";

const ORIENTATION: Record<Orientation, string[]> = {
  axial: ["1", "0", "0", "0", "1", "0"],
  sagittal: ["0", "1", "0", "0", "0", "-1"],
  coronal: ["1", "0", "0", "0", "0", "-1"],
};

const DEFAULT_SERIES: Record<GeneratedModality, SeriesSpec[]> = {
  MR: [
    {
      description: "t1_mprage_sag",
      orientation: "sagittal",
      imageType: ["ORIGINAL", "PRIMARY", "M", "ND", "NORM"],
    },
    {
      description: "ep2d_bold_rest",
      orientation: "axial",
      imageType: ["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"],
    },
    {
      description: "ep2d_diff_mddw",
      orientation: "axial",
      imageType: ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"],
    },
    { description: "t2_spc_sag", orientation: "sagittal", imageType: ["ORIGINAL", "PRIMARY", "M", "ND"] },
    { description: "localizer", orientation: "coronal", imageType: ["ORIGINAL", "PRIMARY", "M", "ND"] },
  ],
  CT: [
    { description: "Head 5mm", orientation: "axial", imageType: ["ORIGINAL", "PRIMARY", "AXIAL"] },
    { description: "Topogram", orientation: "coronal", imageType: ["ORIGINAL", "PRIMARY", "LOCALIZER"] },
  ],
  SC: [{ description: "Screen capture", orientation: "axial", imageType: ["DERIVED", "SECONDARY"] }],
  SR: [{ description: "Report" }],
};

const el = (vr: string, ...values: unknown[]): DicomElement => ({ vr, Value: values });

function seriesSpecs(opts: GenerateOptions, modality: GeneratedModality): SeriesSpec[] {
  if (Array.isArray(opts.series)) return opts.series;
  const n = opts.series ?? 1;
  const defaults = DEFAULT_SERIES[modality];
  return Array.from({ length: n }, (_, i) => {
    const base = defaults[i % defaults.length] ?? {};
    const round = Math.floor(i / defaults.length);
    return { ...base, description: `${base.description ?? "series"}${round > 0 ? `_${round + 1}` : ""}` };
  });
}

function pixelGeometry(fileSize: number): { rows: number; columns: number } {
  const pixels = Math.max(4, Math.floor(fileSize / 2));
  const rows = Math.max(2, Math.floor(Math.sqrt(pixels)));
  let columns = Math.max(2, Math.floor(pixels / rows));
  if ((rows * columns) % 2 === 1) columns += 1;
  return { rows, columns };
}

/** xorshift32 seeded from a string; fills `target` with pseudo-random bytes. */
function fillRandom(target: Buffer, seed: string): void {
  let x = createHash("sha256").update(seed).digest().readUInt32LE(0) || 1;
  const words = Math.floor(target.length / 4);
  for (let i = 0; i < words; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    target.writeUInt32LE(x >>> 0, i * 4);
  }
  for (let i = words * 4; i < target.length; i++) target[i] = (x >>> ((i % 4) * 8)) & 0xff;
}

function fillPattern(target: Buffer, bigEndian: boolean): void {
  // A 12-bit ramp (BitsStored 12), in the byte order of the transfer syntax.
  for (let i = 0; i + 1 < target.length; i += 2) {
    const v = ((i >> 1) * 7) & 0x0fff;
    if (bigEndian) target.writeUInt16BE(v, i);
    else target.writeUInt16LE(v, i);
  }
}

function findAll(buf: Buffer, needle: string): number[] {
  const out: number[] = [];
  const n = Buffer.from(needle, "latin1");
  for (let at = buf.indexOf(n); at !== -1; at = buf.indexOf(n, at + n.length)) out.push(at);
  return out;
}

function buildSeriesDataset(
  o: Required<Pick<GenerateOptions, "manufacturer" | "manufacturerModelName" | "studyDescription">> & {
    modality: GeneratedModality;
    studyUid: string;
    seriesUid: string;
    frameOfReferenceUid: string;
    seed: string;
    spec: SeriesSpec;
    seriesNumber: number;
    phi: PhiMarkers;
    privateTags: boolean;
    nestedSequences: boolean;
    studyDate: string;
    studyTime: string;
    rows: number;
    columns: number;
  },
): DicomElements {
  const { phi, modality } = o;
  const orientation = Array.isArray(o.spec.orientation)
    ? o.spec.orientation.map(String)
    : ORIENTATION[o.spec.orientation ?? "axial"];
  const ds: DicomElements = {
    "00080005": el("CS", "ISO_IR 100"),
    "00080016": el("UI", SOP_CLASS[modality]),
    "00080018": el("UI", UID_PLACEHOLDER),
    "00080020": el("DA", o.studyDate),
    "00080021": el("DA", o.studyDate),
    "00080023": el("DA", o.studyDate),
    "00080030": el("TM", o.studyTime),
    "00080031": el("TM", o.studyTime),
    "00080033": el("TM", o.studyTime),
    "00080050": el("SH", phi.accessionNumber),
    "00080060": el("CS", modality),
    "00080070": el("LO", o.manufacturer),
    "00080080": el("LO", phi.institutionName),
    "00080081": el("ST", phi.institutionAddress),
    "00080090": el("PN", { Alphabetic: phi.referringPhysicianName }),
    "00081010": el("SH", phi.stationName),
    "00081030": el("LO", o.studyDescription),
    "0008103E": el("LO", o.spec.description ?? "series"),
    "00081050": el("PN", { Alphabetic: phi.performingPhysicianName }),
    "00081070": el("PN", { Alphabetic: phi.operatorsName }),
    "00081090": el("LO", o.manufacturerModelName),
    "00100010": el("PN", { Alphabetic: phi.patientName }),
    "00100020": el("LO", phi.patientId),
    "00100030": el("DA", phi.patientBirthDate),
    "00100040": el("CS", "O"),
    "00101010": el("AS", "040Y"),
    "00101040": el("LO", phi.patientAddress),
    "0020000D": el("UI", o.studyUid),
    "0020000E": el("UI", o.seriesUid),
    "00200010": el("SH", "STUDY1"),
    "00200011": el("IS", String(o.seriesNumber)),
    "00200013": el("IS", INUM_PLACEHOLDER),
  };
  if (modality !== "SR") {
    Object.assign(ds, {
      "00080008": el("CS", ...(o.spec.imageType ?? ["ORIGINAL", "PRIMARY"])),
      "00180015": el("CS", "HEAD"),
      "00185100": el("CS", "HFS"),
      "00200012": el("IS", "1"),
      "00200020": el("CS"),
      "00200032": el("DS", "-120", "-120", POS_PLACEHOLDER),
      "00200037": el("DS", ...orientation),
      "00200052": el("UI", o.frameOfReferenceUid),
      "00201040": el("LO"),
      "00201041": el("DS", POS_PLACEHOLDER),
      "00280002": el("US", 1),
      "00280004": el("CS", "MONOCHROME2"),
      "00280010": el("US", o.rows),
      "00280011": el("US", o.columns),
      "00280030": el("DS", "0.9375", "0.9375"),
      "00280100": el("US", 16),
      "00280101": el("US", 12),
      "00280102": el("US", 11),
      "00280103": el("US", 0),
      "00281050": el("DS", "600"),
      "00281051": el("DS", "1200"),
    });
  }
  if (modality === "MR") {
    Object.assign(ds, {
      "00180020": el("CS", "GR"),
      "00180021": el("CS", "SP"),
      "00180023": el("CS", "3D"),
      "00180024": el("SH", `*${(o.spec.description ?? "seq").slice(0, 14)}`),
      "00180050": el("DS", "1"),
      "00180022": el("CS"),
      "00180080": el("DS", "2300"),
      "00180081": el("DS", "2.98"),
      "00180087": el("DS", "3"),
      "00180091": el("IS", "1"),
      "00181030": el("LO", o.spec.description ?? "protocol"),
    });
  } else if (modality === "CT") {
    Object.assign(ds, {
      "00180050": el("DS", "5"),
      "00180060": el("DS", "120"),
      "00181210": el("SH", "H30s"),
      "00281052": el("DS", "-1024"),
      "00281053": el("DS", "1"),
    });
  } else if (modality === "SC") {
    ds["00080064"] = el("CS", "WSD");
  } else {
    Object.assign(ds, {
      "00081111": el("SQ"),
      "0040A040": el("CS", "CONTAINER"),
      "0040A043": el("SQ", {
        "00080100": el("SH", "11528-7"),
        "00080102": el("SH", "LN"),
        "00080104": el("LO", "Radiology Report"),
      }),
      "0040A050": el("CS", "SEPARATE"),
      "0040A372": el("SQ"),
      "0040A491": el("CS", "COMPLETE"),
      "0040A493": el("CS", "UNVERIFIED"),
      "0040A730": el(
        "SQ",
        {
          "0040A010": el("CS", "CONTAINS"),
          "0040A040": el("CS", "TEXT"),
          "0040A043": el("SQ", {
            "00080100": el("SH", "121071"),
            "00080102": el("SH", "DCM"),
            "00080104": el("LO", "Finding"),
          }),
          "0040A160": el("UT", `Synthetic finding for ${phi.patientName}`),
        },
        {
          "0040A010": el("CS", "CONTAINS"),
          "0040A040": el("CS", "TEXT"),
          "0040A043": el("SQ", {
            "00080100": el("SH", "121072"),
            "00080102": el("SH", "DCM"),
            "00080104": el("LO", "Impression"),
          }),
          "0040A160": el("UT", "No acute abnormality."),
        },
      ),
    });
  }
  if (o.nestedSequences) {
    const refStudyUid = deterministicUid(o.seed, "referenced-study");
    Object.assign(ds, {
      "00081110": el("SQ", {
        "00081150": el("UI", "1.2.840.10008.3.1.2.3.1"),
        "00081155": el("UI", refStudyUid),
      }),
      "00101002": el(
        "SQ",
        {
          "00100020": el("LO", phi.otherPatientId),
          "00100021": el("LO", "PHIMARK_ISSUER_A"),
          "00100022": el("CS", "TEXT"),
        },
        {
          "00100020": el("LO", `${phi.otherPatientId}_2`),
          "00100021": el("LO", "PHIMARK_ISSUER_B"),
          "00100022": el("CS", "TEXT"),
        },
      ),
      "00400275": el("SQ", {
        "00080050": el("SH", phi.accessionNumber),
        "00081110": el("SQ", {
          "00081150": el("UI", "1.2.840.10008.3.1.2.3.1"),
          "00081155": el("UI", refStudyUid),
        }),
        "00321060": el("LO", o.studyDescription),
        "00400007": el("LO", o.spec.description ?? "series"),
        "00400008": el("SQ", {
          "00080100": el("SH", "PROTO1"),
          "00080102": el("SH", "99FIONA"),
          "00080104": el("LO", "Research protocol"),
        }),
        "00400009": el("SH", "SPS1"),
        "00401001": el("SH", "RP1"),
      }),
    });
  }
  if (o.privateTags) {
    Object.assign(ds, {
      "00090010": el("LO", PRIVATE_CREATORS.main),
      "00091001": el("LO", "private text value"),
      "00091002": el("US", 4242),
      "00091003": el("DS", "3.25"),
      "00091004": el("OB", new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]).buffer),
      "00091005": el("LO", phi.patientName),
      "00091010": el(
        "SQ",
        {
          "00090010": el("LO", PRIVATE_CREATORS.main),
          "00091001": el("LO", "item 1 private"),
          "00091005": el("LO", phi.patientId),
          "00100020": el("LO", phi.patientId),
          "00091011": el("SQ", { "00080100": el("SH", "NESTED"), "00080104": el("LO", "nested in private") }),
        },
        { "00090010": el("LO", PRIVATE_CREATORS.main), "00091001": el("LO", "item 2 private") },
      ),
      "00290010": el("LO", PRIVATE_CREATORS.csa),
      "00291010": el(
        "OB",
        new Uint8Array(Buffer.from("SV10\u0004\u0003\u0002\u0001CSA-ish payload.", "latin1")).buffer,
      ),
    });
  }
  for (const [tag, value] of Object.entries(o.spec.extra ?? {})) ds[tag.toUpperCase()] = value;
  return ds;
}

/** Write a synthetic study; see the module comment. Synchronous: it is CPU- and page-cache-bound. */
export function generateStudy(options: GenerateOptions): GeneratedStudy {
  const modality = options.modality ?? "MR";
  const seed = String(options.seed ?? "fiona");
  const tsName = options.transferSyntax ?? "explicit-le";
  const transferSyntaxUid = TRANSFER_SYNTAX[tsName];
  const bigEndian = tsName === "explicit-be";
  const phi = { ...DEFAULT_PHI, ...options.phi };
  const studyUid = options.studyInstanceUid ?? deterministicUid(seed, "study");
  const { rows, columns } = pixelGeometry(options.fileSize ?? 128 * 1024);
  const pixelBytes = modality === "SR" ? 0 : rows * columns * 2;
  const specs = seriesSpecs(options, modality);
  const perSeries = options.instancesPerSeries ?? 1;
  const fill = options.pixelFill ?? "pattern";

  const study: GeneratedStudy = {
    dir: options.outDir,
    modality,
    sopClassUid: SOP_CLASS[modality],
    transferSyntaxUid,
    studyInstanceUid: studyUid,
    seriesInstanceUids: [],
    sopInstanceUids: [],
    files: [],
    series: [],
    phi,
    totalBytes: 0,
  };

  specs.forEach((spec, sIndex) => {
    const seriesNumber = spec.seriesNumber ?? sIndex + 1;
    const seriesUid = deterministicUid(seed, studyUid, "series", sIndex);
    const dataset = buildSeriesDataset({
      modality,
      studyUid,
      seriesUid,
      frameOfReferenceUid: deterministicUid(seed, studyUid, "for", sIndex),
      seed,
      spec,
      seriesNumber,
      phi,
      privateTags: options.privateTags ?? true,
      nestedSequences: options.nestedSequences ?? true,
      manufacturer: options.manufacturer ?? "SIEMENS",
      manufacturerModelName: options.manufacturerModelName ?? "Prisma",
      studyDescription: options.studyDescription ?? `FIONA synthetic ${modality}`,
      studyDate: options.studyDate ?? "20240102",
      studyTime: options.studyTime ?? "101500",
      rows,
      columns,
    });
    if (pixelBytes > 0) dataset["7FE00010"] = el("OW", new ArrayBuffer(pixelBytes));
    const dict = new dcmjs.data.DicomDict({
      "00020001": el("OB", new Uint8Array([0, 1]).buffer),
      "00020002": el("UI", SOP_CLASS[modality]),
      "00020003": el("UI", UID_PLACEHOLDER),
      "00020010": el("UI", transferSyntaxUid),
      "00020012": el("UI", GENERATOR_IMPLEMENTATION_UID),
      "00020013": el("SH", "FIONA_TESTGEN"),
    });
    dict.dict = dataset;
    // allowInvalidVRLength: overridden UIDs may be invalid on purpose (tests of the receiver's checks).
    const template = Buffer.from(dict.write({ fragmentMultiframe: false, allowInvalidVRLength: true }));

    const uidAt = findAll(template, UID_PLACEHOLDER);
    const inumAt = findAll(template, INUM_PLACEHOLDER);
    const posAt = findAll(template, POS_PLACEHOLDER);
    if (uidAt.length !== 2 || inumAt.length !== 1)
      throw new Error("generator: template placeholders not found");
    const pixelAt = template.length - pixelBytes;
    const pixelLength = bigEndian ? template.readUInt32BE(pixelAt - 4) : template.readUInt32LE(pixelAt - 4);
    if (pixelBytes > 0 && pixelLength !== pixelBytes) {
      throw new Error("generator: PixelData must be the last element (extra elements after it?)");
    }
    const pixels = template.subarray(pixelAt);
    if (pixelBytes > 0 && fill === "pattern") fillPattern(pixels, bigEndian);

    const dir = path.join(options.outDir, `series-${String(sIndex + 1).padStart(2, "0")}`);
    fs.mkdirSync(dir, { recursive: true });
    const series: GeneratedSeries = {
      seriesInstanceUid: seriesUid,
      seriesNumber,
      description: spec.description ?? "series",
      files: [],
      sopInstanceUids: [],
    };
    const count = spec.instances ?? perSeries;
    for (let i = 0; i < count; i++) {
      const sopUid = deterministicUid(seed, seriesUid, "sop", i);
      for (const at of uidAt) template.write(sopUid, at, "latin1");
      // Fixed-width values without padding spaces (dcmtk drops trailing spaces when it re-encodes):
      // InstanceNumber "000001", position "-0060.00".
      template.write(String(i + 1).padStart(INUM_PLACEHOLDER.length, "0"), inumAt[0] ?? 0, "latin1");
      const zValue = i * 1.5 - 60;
      const z = `${zValue < 0 ? "-" : "+"}${Math.abs(zValue)
        .toFixed(2)
        .padStart(POS_PLACEHOLDER.length - 1, "0")}`;
      for (const at of posAt) template.write(z, at, "latin1");
      if (pixelBytes >= 8) {
        if (fill === "random") fillRandom(pixels, `${seed}/${sopUid}`);
        else pixels.writeUInt32LE(i, 0); // stamp so no two instances share pixel bytes
      }
      const file = path.join(dir, `IM${String(i + 1).padStart(5, "0")}.dcm`);
      fs.writeFileSync(file, template);
      series.files.push(file);
      series.sopInstanceUids.push(sopUid);
      study.totalBytes += template.length;
    }
    study.series.push(series);
    study.seriesInstanceUids.push(seriesUid);
    study.files.push(...series.files);
    study.sopInstanceUids.push(...series.sopInstanceUids);
  });
  return study;
}

/** Build an element for `SeriesSpec.extra`: `element("SH", "value")`. */
export const element = el;
