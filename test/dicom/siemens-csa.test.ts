import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { readHeader } from "../../src/dicom/header.js";
import { csaValue, parseCsaHeader, phoenixFields, readSiemensCsa } from "../../src/dicom/siemens-csa.js";

interface CsaTag {
  name: string;
  vr?: string;
  values: string[];
  /** Siemens writes 6 items for most tags, the unused ones empty. */
  items?: number;
}

/** A CSA header as scanners write it: "SV10" (CSA2) or the older layout without magic (CSA1). */
function csa(tags: CsaTag[], format: "CSA2" | "CSA1" = "CSA2"): Uint8Array {
  const chunks: Buffer[] = [];
  const int32 = (...values: number[]) => {
    const b = Buffer.alloc(4 * values.length);
    values.forEach((v, i) => b.writeInt32LE(v, 4 * i));
    chunks.push(b);
  };
  if (format === "CSA2") chunks.push(Buffer.from([0x53, 0x56, 0x31, 0x30, 4, 3, 2, 1]));
  int32(tags.length, 77);
  const firstItems = tags[0]?.items ?? 6;
  for (const tag of tags) {
    const items = tag.items ?? 6;
    const head = Buffer.alloc(84);
    head.write(tag.name, 0, "latin1");
    head.writeInt32LE(tag.values.length, 64);
    head.write(tag.vr ?? "LO", 68, "latin1");
    head.writeInt32LE(items, 76);
    head.writeInt32LE(77, 80);
    chunks.push(head);
    for (let i = 0; i < items; i++) {
      const value = tag.values[i];
      const data = value === undefined ? Buffer.alloc(0) : Buffer.from(value + "\0", "latin1");
      const length = data.length;
      int32(format === "CSA2" ? length : length + firstItems, length, 77, length);
      chunks.push(data, Buffer.alloc((4 - (length % 4)) % 4));
    }
  }
  return new Uint8Array(Buffer.concat(chunks));
}

const IMAGE_TAGS: CsaTag[] = [
  { name: "EchoLinePosition", vr: "IS", values: ["64"] },
  { name: "B_value", vr: "IS", values: ["1000"] },
  { name: "DiffusionDirectionality", vr: "CS", values: ["DIRECTIONAL"] },
  { name: "DiffusionGradientDirection", vr: "FD", values: ["0.57735027", "-0.57735027", "0.57735027"] },
  { name: "PhaseEncodingDirectionPositive", vr: "IS", values: ["1"] },
  { name: "ImaCoilString", vr: "LO", values: [], items: 0 },
  { name: "SliceMeasurementDuration", vr: "DS", values: [] },
];

describe("parseCsaHeader", () => {
  it.each(["CSA2", "CSA1"] as const)("reads %s headers", (format) => {
    const parsed = parseCsaHeader(csa(IMAGE_TAGS, format));
    expect(parsed?.get("B_value")).toEqual(["1000"]);
    expect(parsed?.get("DiffusionGradientDirection")).toEqual(["0.57735027", "-0.57735027", "0.57735027"]);
    expect(csaValue(parsed, "DiffusionDirectionality")).toBe("DIRECTIONAL");
    expect(csaValue(parsed, "DiffusionGradientDirection")).toEqual([
      "0.57735027",
      "-0.57735027",
      "0.57735027",
    ]);
    expect(csaValue(parsed, "ImaCoilString")).toBe("");
    expect(csaValue(parsed, "SliceMeasurementDuration")).toBe("");
    expect(csaValue(parsed, "NotThere")).toBeUndefined();
    expect(parsed?.size).toBe(IMAGE_TAGS.length);
  });

  it("returns undefined for garbage, truncation and absurd counts, and never throws", () => {
    const good = csa(IMAGE_TAGS);
    expect(parseCsaHeader(undefined)).toBeUndefined();
    expect(parseCsaHeader(new Uint8Array(0))).toBeUndefined();
    expect(
      parseCsaHeader(Buffer.from("SV10\x04\x03\x02\x01\xff\xff\xff\x7f\x4d\x00\x00\x00", "latin1")),
    ).toBeUndefined();
    expect(parseCsaHeader(good.subarray(0, 300))).toBeUndefined();
    for (let cut = 0; cut < good.length; cut += 5)
      expect(() => parseCsaHeader(good.subarray(0, cut))).not.toThrow();
    let seed = 1;
    for (let n = 0; n < 200; n++) {
      const noise = good.slice();
      for (let i = 0; i < 20; i++) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        noise[seed % noise.length] = seed & 0xff;
      }
      expect(() => parseCsaHeader(noise)).not.toThrow();
    }
  });
});

const PROTOCOL = [
  '<XProtocol> { <Name> "PhoenixMetaProtocol" }',
  "### ASCCONV BEGIN object=MrProtDataImpl@MrProtocolData version=51130001 ###",
  "ulVersion\t = \t0x14b44b6",
  'tSequenceFileName\t = \t""%SiemensSeq%\\ep2d_diff""',
  'sProtConsistencyInfo.tMeasuredBaselineString\t = \t""N4_VE11C_LATEST_20160120""',
  "sGroupArray.asGroup[0].nSize\t = \t60",
  "sGroupArray.asGroup[1].nSize\t = \t12",
  "sSliceArray.lSize\t = \t72",
  'sWipMemBlock.tFree\t = \t""6d1a7f3b-4c2e-4f00-9b1e-3e1f2a4b5c6d""',
  "lSequenceID\t = \t1234",
  "### ASCCONV END ###",
].join("\n");

describe("phoenixFields", () => {
  it("extracts FIONA's MrPhoenixProtocol values", () => {
    const series = parseCsaHeader(csa([{ name: "MrPhoenixProtocol", vr: "UN", values: [PROTOCOL] }]));
    expect(phoenixFields(series)).toEqual({
      siemensUUID: "6d1a7f3b-4c2e-4f00-9b1e-3e1f2a4b5c6d",
      OSLevel: "VE11C",
      NumSlices: "60",
      MeasID: "1234",
    });
  });

  it("accepts spaces instead of tabs and ignores what is missing", () => {
    const spaced = PROTOCOL.replace(/\t/g, "   ").replace(/^sWipMemBlock.*$/m, "");
    const series = parseCsaHeader(csa([{ name: "MrPhoenixProtocol", values: [spaced] }]));
    expect(phoenixFields(series)).toEqual({ OSLevel: "VE11C", NumSlices: "60", MeasID: "1234" });
    expect(phoenixFields(undefined)).toEqual({});
    expect(phoenixFields(parseCsaHeader(csa([{ name: "Other", values: ["x"] }])))).toEqual({});
  });
});

type Elements = Record<string, { vr: string; Value?: unknown[] }>;
const dcmjs = createRequire(import.meta.url)("dcmjs") as {
  data: { DicomDict: new (meta: Elements) => { dict: Elements; write(): ArrayBuffer } };
};

function siemensFile(elements: Elements, ts: string): Uint8Array {
  const dict = new dcmjs.data.DicomDict({
    "00020001": { vr: "OB", Value: [new Uint8Array([0, 1]).buffer] },
    "00020002": { vr: "UI", Value: ["1.2.840.10008.5.1.4.1.1.4"] },
    "00020003": { vr: "UI", Value: ["1.2.826.0.1.3680043.8.498.1"] },
    "00020010": { vr: "UI", Value: [ts] },
  });
  dict.dict = { "00080060": { vr: "CS", Value: ["MR"] }, ...elements };
  return new Uint8Array(dict.write());
}
const ob = (bytes: Uint8Array) => ({ vr: "OB", Value: [bytes.slice().buffer] });

describe("readSiemensCsa", () => {
  const image = csa(IMAGE_TAGS);
  const series = csa([{ name: "MrPhoenixProtocol", values: [PROTOCOL] }]);

  it.each(["1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.2"])(
    "finds the image and series headers (%s)",
    (ts) => {
      const header = readHeader(
        siemensFile(
          {
            "00290010": { vr: "LO", Value: ["SIEMENS CSA HEADER"] },
            "00291010": ob(image),
            "00291020": ob(series),
          },
          ts,
        ),
      );
      const found = readSiemensCsa(header);
      expect(csaValue(found.image, "B_value")).toBe("1000");
      expect(phoenixFields(found.series).NumSlices).toBe("60");
    },
  );

  it("falls back to the other private blocks FIONA tries, and skips empty elements", () => {
    const header = readHeader(
      siemensFile(
        {
          "00290010": { vr: "LO", Value: ["SIEMENS CSA HEADER"] },
          "00290011": { vr: "LO", Value: ["SIEMENS CSA HEADER"] },
          "00291010": { vr: "OB", Value: [new ArrayBuffer(0)] },
          "00291110": ob(image),
          "00291120": ob(series),
        },
        "1.2.840.10008.1.2.1",
      ),
    );
    const found = readSiemensCsa(header);
    expect(csaValue(found.image, "PhaseEncodingDirectionPositive")).toBe("1");
    expect(phoenixFields(found.series).MeasID).toBe("1234");
  });

  it("gives nothing for non-Siemens files or garbage CSA bytes", () => {
    expect(readSiemensCsa(readHeader(siemensFile({}, "1.2.840.10008.1.2.1")))).toEqual({});
    const garbage = siemensFile({ "00291010": ob(new Uint8Array(64).fill(0xcd)) }, "1.2.840.10008.1.2.1");
    expect(readSiemensCsa(readHeader(garbage)).image).toBeUndefined();
  });
});
