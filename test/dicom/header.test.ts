import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { deflateRawSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { entryForKeyword, privateVr } from "../../src/dicom/dictionary.js";
import { DicomParseError, readHeader, readHeaderFile, type DicomHeader } from "../../src/dicom/header.js";
import { isPart10 } from "../../src/dicom/part10.js";

type Elements = Record<string, { vr: string; Value?: unknown[] }>;
interface Dcmjs {
  data: {
    DicomDict: new (meta: Elements) => { dict: Elements; write(): ArrayBuffer };
  };
}
const dcmjs = createRequire(import.meta.url)("dcmjs") as Dcmjs;

const TS = {
  explicit: "1.2.840.10008.1.2.1",
  implicit: "1.2.840.10008.1.2",
  bigEndian: "1.2.840.10008.1.2.2",
  deflated: "1.2.840.10008.1.2.1.99",
} as const;

/** Part-10 bytes written by dcmjs; deflated datasets are compressed here (dcmjs writes them plain). */
function part10(elements: Elements, ts: string = TS.explicit): Buffer {
  const dict = new dcmjs.data.DicomDict({
    "00020001": { vr: "OB", Value: [new Uint8Array([0, 1]).buffer] },
    "00020002": { vr: "UI", Value: ["1.2.840.10008.5.1.4.1.1.4"] },
    "00020003": { vr: "UI", Value: ["1.2.826.0.1.3680043.8.498.1"] },
    "00020010": { vr: "UI", Value: [ts] },
  });
  dict.dict = structuredClone(elements);
  const bytes = Buffer.from(dict.write());
  if (ts !== TS.deflated) return bytes;
  const start = datasetOffset(bytes);
  return Buffer.concat([bytes.subarray(0, start), deflateRawSync(bytes.subarray(start))]);
}

/** Preamble + "DICM" + group length element + meta group. */
const datasetOffset = (bytes: Buffer) => 144 + bytes.readUInt32LE(140);

const el = (vr: string, ...values: unknown[]) => ({ vr, Value: values });
const PIXELS = 4096;

const MR: Elements = {
  "00080005": el("CS", "ISO_IR 192"),
  "00080008": el("CS", "ORIGINAL", "PRIMARY", "M", "ND"),
  "00080016": el("UI", "1.2.840.10008.5.1.4.1.1.4"),
  "00080018": el("UI", "1.2.826.0.1.3680043.8.498.1"),
  "00080050": el("SH"),
  "00080060": el("CS", "MR"),
  "0008103E": el("LO", "t1_mprage_sag "),
  "00090010": el("LO", "FIONA TEST"),
  "00091001": el("LO", "private text"),
  "00091002": el("US", 0x0102),
  "00100010": el("PN", { Alphabetic: "Müller^Jörg" }),
  "00180050": el("DS", "1.0000"),
  "00181310": el("US", 0, 256, 256, 0),
  "00189087": el("FD", 1000),
  "00200011": el("IS", "7"),
  "00200037": el("DS", 1, 0, 0, 0, 0.7071, -0.7071),
  "00280010": el("US", 256),
  "00400275": el("SQ", {
    "00400009": el("SH", "SPS-1"),
    "00081110": el("SQ", { "00081155": el("UI", "1.2.826.0.1.3680043.8.498.2") }),
  }),
  "00430010": el("LO", "GEMS_PARM_01"),
  "00431039": el("IS", 1000, 8, 0, 0),
  "7FE00010": el("OW", new ArrayBuffer(PIXELS)),
};

/** What every transfer syntax must give for MR. */
function expectMrValues(h: DicomHeader) {
  expect(h.keyword("ImageType")).toEqual(["ORIGINAL", "PRIMARY", "M", "ND"]);
  expect(h.keyword("Modality")).toBe("MR");
  expect(h.keyword("SeriesDescription")).toBe("t1_mprage_sag");
  expect(h.keyword("PatientName")).toBe("Müller^Jörg");
  expect(h.keyword("SliceThickness")).toBe(1);
  expect(h.strings("SliceThickness")).toEqual(["1.0000"]);
  expect(h.keyword("ImageOrientationPatient")).toEqual([1, 0, 0, 0, 0.7071, -0.7071]);
  expect(h.keyword("SeriesNumber")).toBe(7);
  expect(h.keyword("AcquisitionMatrix")).toEqual([0, 256, 256, 0]);
  expect(h.keyword("Rows")).toBe(256);
  expect(h.keyword("DiffusionBValue")).toBe(1000);
  expect(h.keyword("AccessionNumber")).toBe("");
  expect(h.has("AccessionNumber")).toBe(true);
  expect(h.keyword("StudyDescription")).toBeUndefined();
  expect(h.has("StudyDescription")).toBe(false);
  expect(h.keyword("NoSuchKeyword")).toBeUndefined();
  expect(h.tag(0x0008, 0x0060)).toBe("MR");
  expect(h.string("0008103E")).toBe("t1_mprage_sag");
  expect(h.string("ImageType")).toBe("ORIGINAL\\PRIMARY\\M\\ND");
  expect(h.string("SOPInstanceUID")).toBe("1.2.826.0.1.3680043.8.498.1");
  // Private elements by tag; the GE one decodes by its creator's dictionary even in implicit VR.
  expect(h.tag(0x0009, 0x0010)).toBe("FIONA TEST");
  expect(h.tag(0x0009, 0x1001)).toBe("private text");
  expect(h.tag(0x0043, 0x1039)).toEqual([1000, 8, 0, 0]);
  // Sequences: item 0 at each level.
  expect(
    h.nested([
      [0x0040, 0x0275],
      [0x0040, 0x0009],
    ]),
  ).toBe("SPS-1");
  expect(
    h.nested([
      [0x0040, 0x0275],
      [0x0008, 0x1110],
      [0x0008, 0x1155],
    ]),
  ).toBe("1.2.826.0.1.3680043.8.498.2");
  expect(
    h.nested([
      [0x0040, 0x0275],
      [0x0008, 0x1155],
    ]),
  ).toBeUndefined();
  expect(
    h.nested([
      [0x0040, 0x0270],
      [0x0040, 0x0009],
    ]),
  ).toBeUndefined();
  expect(h.keyword("RequestAttributesSequence")).toBeUndefined();
  // Pixel data is never decoded.
  expect(h.has("PixelData")).toBe(true);
  expect(h.keyword("PixelData")).toBeUndefined();
}

describe("readHeader", () => {
  it.each(Object.entries(TS))("reads %s Part-10 files", (_name, ts) => {
    const h = readHeader(part10(MR, ts));
    expect(h.transferSyntaxUid).toBe(ts);
    expectMrValues(h);
    expect(h.tag(0x0002, 0x0010)).toBe(ts);
  });

  it("decodes a private binary element by its explicit VR, and not at all when implicit and unknown", () => {
    expect(readHeader(part10(MR, TS.explicit)).tag(0x0009, 0x1002)).toBe(0x0102);
    expect(readHeader(part10(MR, TS.bigEndian)).tag(0x0009, 0x1002)).toBe(0x0102);
    const implicit = readHeader(part10(MR, TS.implicit));
    expect(implicit.tag(0x0009, 0x1002)).toBeUndefined();
    expect(implicit.has("00091002")).toBe(true);
    expect(implicit.vr("00091002")).toBe("UN");
    expect(implicit.vr("00431039")).toBe("IS");
    expect(implicit.vr("ImageType")).toBe("CS");
  });

  it("reads a private sequence in implicit VR", () => {
    const withPrivateSq: Elements = {
      ...MR,
      "00290010": el("LO", "ACME"),
      "00291001": el("SQ", { "00180024": el("SH", "epfid2d1") }),
    };
    for (const ts of [TS.explicit, TS.implicit]) {
      expect(
        readHeader(part10(withPrivateSq, ts)).nested([
          [0x0029, 0x1001],
          [0x0018, 0x0024],
        ]),
      ).toBe("epfid2d1");
    }
  });

  it("reads raw datasets without meta when the transfer syntax is given", () => {
    for (const ts of [TS.explicit, TS.implicit, TS.bigEndian]) {
      const file = part10(MR, ts);
      const raw = file.subarray(datasetOffset(file));
      expect(isPart10(raw)).toBe(false);
      const h = readHeader(raw, { transferSyntaxUid: ts });
      expect(h.transferSyntaxUid).toBe(ts);
      expectMrValues(h);
      expect(h.tag(0x0002, 0x0010)).toBeUndefined();
      expect(() => readHeader(raw)).toThrow(/no DICM prefix/);
    }
  });

  it("accepts a Uint8Array that is a view into a larger buffer", () => {
    const file = part10(MR);
    const padded = new Uint8Array(file.length + 20);
    padded.set(file, 10);
    expectMrValues(readHeader(padded.subarray(10, 10 + file.length)));
  });

  it("rejects non-DICOM bytes", () => {
    expect(() => readHeader(Buffer.from("just some text, not DICOM ".repeat(20)))).toThrow(DicomParseError);
    expect(() => readHeader(new Uint8Array(0))).toThrow(/no DICM prefix/);
    const fakePrefix = Buffer.alloc(400, 0x41);
    fakePrefix.write("DICM", 128, "latin1");
    expect(() => readHeader(fakePrefix)).toThrow(DicomParseError);
    // Garbage as a raw dataset: explicit gives an invalid VR, implicit elements out of order.
    const noise = Buffer.from(Array.from({ length: 2000 }, (_, i) => (i * 7919 + 13) % 251));
    expect(() => readHeader(noise, { transferSyntaxUid: TS.explicit })).toThrow(DicomParseError);
    expect(() => readHeader(noise, { transferSyntaxUid: TS.implicit })).toThrow(DicomParseError);
  });

  it.each(Object.entries(TS))(
    "rejects %s files truncated inside an element, without patient data",
    (_name, ts) => {
      const file = part10(MR, ts);
      const name = file.indexOf(Buffer.from("t1_mprage_sag"));
      const cuts = [file.length - PIXELS / 2, file.length - 1];
      if (name > 0) cuts.push(name + 4);
      if (ts !== TS.deflated) cuts.push(file.indexOf(Buffer.from("SPS-1")) + 2);
      for (const cut of cuts) {
        let error: unknown;
        try {
          readHeader(file.subarray(0, cut));
        } catch (e) {
          error = e;
        }
        expect(error, `cut at ${cut}`).toBeInstanceOf(DicomParseError);
        expect((error as Error).message).not.toMatch(/Müller|Jörg|mprage|SPS/);
      }
    },
  );

  it("never throws anything but DicomParseError, whatever the cut", () => {
    for (const ts of [TS.explicit, TS.implicit, TS.bigEndian]) {
      const file = part10(MR, ts);
      for (let cut = 0; cut < file.length - PIXELS; cut += 3) {
        try {
          readHeader(file.subarray(0, cut));
        } catch (e) {
          expect(e, `${ts} cut at ${cut}`).toBeInstanceOf(DicomParseError);
        }
      }
    }
  });

  it("parses a typical header well under a millisecond", () => {
    const file = part10(MR);
    for (let i = 0; i < 200; i++) readHeader(file);
    const start = performance.now();
    for (let i = 0; i < 1000; i++) readHeader(file).keyword("SeriesDescription");
    expect((performance.now() - start) / 1000).toBeLessThan(1);
  });
});

describe("isPart10", () => {
  it("looks for DICM after the preamble", () => {
    expect(isPart10(part10(MR))).toBe(true);
    expect(isPart10(new Uint8Array(131))).toBe(false);
    expect(isPart10(new Uint8Array(200))).toBe(false);
  });
});

describe("readHeaderFile", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "fiona-header-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, bytes: Uint8Array) => {
    const file = path.join(dir, name);
    writeFileSync(file, bytes);
    return file;
  };
  const MiB = 1 << 20;

  it("reads small and large files", async () => {
    expectMrValues(await readHeaderFile(write("small.dcm", part10(MR))));
    const large = { ...MR, "7FE00010": el("OW", new ArrayBuffer(3 * MiB)) };
    expectMrValues(await readHeaderFile(write("large.dcm", part10(large, TS.implicit))));
    expectMrValues(await readHeaderFile(write("large-deflated.dcm", part10(large, TS.deflated))));
  });

  it("falls back to the whole file when the header is longer than the first chunk", async () => {
    const bigPrivate = { ...MR, "00091003": el("OB", new ArrayBuffer(1.5 * MiB)) };
    expectMrValues(await readHeaderFile(write("big-private.dcm", part10(bigPrivate))));
    const noPixels: Elements = { ...bigPrivate };
    delete noPixels["7FE00010"];
    const h = await readHeaderFile(write("no-pixels.dcm", part10(noPixels, TS.implicit)));
    expect(h.keyword("SeriesNumber")).toBe(7);
    expect(h.bytes(0x0009, 0x1003)?.length).toBe(1.5 * MiB);
  });

  it("throws DicomParseError for truncated and non-DICOM files, and the fs error for missing ones", async () => {
    const large = part10({ ...MR, "7FE00010": el("OW", new ArrayBuffer(3 * MiB)) });
    await expect(readHeaderFile(write("cut.dcm", large.subarray(0, 2 * MiB)))).rejects.toThrow(/truncated/);
    await expect(readHeaderFile(write("text.txt", Buffer.alloc(2 * MiB, "x")))).rejects.toBeInstanceOf(
      DicomParseError,
    );
    await expect(readHeaderFile(write("empty.dcm", new Uint8Array(0)))).rejects.toBeInstanceOf(
      DicomParseError,
    );
    await expect(readHeaderFile(path.join(dir, "missing.dcm"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});

describe("dictionary", () => {
  it("covers the keywords of FIONA's series JSON and classification rules", () => {
    const needed =
      "Manufacturer ManufacturerModelName SoftwareVersions AcquisitionMatrix Modality StudyInstanceUID " +
      "SeriesInstanceUID SeriesTime PatientID PatientName PatientSex InstitutionName SOPClassUID StudyDate " +
      "StudyTime StudyDescription StationName SeriesDescription SequenceName ScanOptions EchoTime RepetitionTime " +
      "SeriesNumber InstanceNumber SliceThickness ImageType SpacingBetweenSlices ScanningSequence SequenceVariant " +
      "SliceLocation ImagesInAcquisition NumberOfTemporalPositions AccessionNumber OperatorsName StudyID " +
      "SOPInstanceUID ImageOrientationPatient MRAcquisitionType InversionTime EchoTrainLength DiffusionBValue " +
      "ContrastBolusAgent BurnedInAnnotation ReferencedImageSequence ConvolutionKernel BodyPartExamined " +
      "ProtocolName NumberOfFrames Rows Columns PixelSpacing SharedFunctionalGroupsSequence " +
      "PerFrameFunctionalGroupsSequence";
    for (const keyword of needed.split(" ")) expect(entryForKeyword(keyword), keyword).toBeDefined();
  });

  it("knows the private elements FIONA reads, by creator", () => {
    expect(privateVr("GEMS_PARM_01", 0x0043, 0x1039)).toBe("IS");
    expect(privateVr("GEMS_PARM_01", 0x0043, 0x1139)).toBe("IS");
    expect(privateVr("SIEMENS CSA HEADER", 0x0029, 0x1010)).toBe("OB");
    expect(privateVr("SIEMENS MR HEADER", 0x0051, 0x100f)).toBe("LO");
    expect(privateVr("OTHER", 0x0043, 0x1039)).toBeUndefined();
  });
});

const PYDICOM = "/usr/lib/python3/dist-packages/pydicom/data/test_files";

describe.skipIf(!existsSync(PYDICOM))("pydicom's test files (python3-pydicom)", () => {
  const read = (name: string) => readFileSync(path.join(PYDICOM, name));

  it("gives the same values for explicit, implicit and big-endian MR_small", () => {
    for (const name of ["MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm"]) {
      const h = readHeader(read(name));
      expect(h.keyword("PatientName"), name).toBe("CompressedSamples^MR1");
      expect(h.keyword("ImageType")).toEqual(["DERIVED", "SECONDARY", "OTHER"]);
      expect(h.keyword("ImagePositionPatient")).toEqual([-83.9063, -91.2, 6.6406]);
      expect(h.keyword("Rows")).toBe(64);
      expect(h.keyword("LargestImagePixelValue")).toBe(4000);
      expect(h.string("SliceThickness")).toBe("0.8000");
    }
  });

  it("reads the deflated image and rejects the truncated one", () => {
    const deflated = readHeader(read("image_dfl.dcm"));
    expect(deflated.transferSyntaxUid).toBe(TS.deflated);
    expect(deflated.keyword("Rows")).toBe(512);
    expect(deflated.keyword("Modality")).toBe("OT");
    expect(() => readHeader(read("MR_truncated.dcm"))).toThrow(DicomParseError);
  });

  it("walks a private sequence stored as UN", () => {
    const h = readHeader(read("UN_sequence.dcm"));
    expect(
      h.nested([
        [0x4453, 0x100c],
        [0x0008, 0x1115],
        [0x0008, 0x1199],
        [0x0008, 0x1150],
      ]),
    ).toBe("1.2.840.10008.5.1.4.1.1.2");
  });

  it("reads a big-endian dataset without meta", () => {
    const h = readHeader(read("ExplVR_BigEndNoMeta.dcm"), { transferSyntaxUid: TS.bigEndian });
    expect(h.keyword("Modality")).toBe("RTPLAN");
  });
});
