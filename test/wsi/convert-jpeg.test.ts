import { describe, expect, it } from "vitest";
import { WsiInputError } from "../../src/wsi/errors.js";
import {
  APP14_RGB,
  mergedLength,
  mergedPieces,
  passThroughSyntax,
  readSof,
  tilePrefix,
} from "../../src/wsi/jpeg.js";
import { SRGB_ICC } from "../../src/wsi/srgb-icc.js";
import { derivedUid, formatDs } from "../../src/wsi/wsm-dataset.js";

const seg = (marker: number, body: number[]) => [
  0xff,
  marker,
  (body.length + 2) >> 8,
  (body.length + 2) & 0xff,
  ...body,
];
const tables = Buffer.from([0xff, 0xd8, ...seg(0xdb, [0, 1, 2, 3]), ...seg(0xc4, [9, 9]), 0xff, 0xd9]);
const sof = (marker: number, precision: number) =>
  seg(marker, [precision, 0, 128, 0, 64, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
const tile = (marker = 0xc0, precision = 8) =>
  Buffer.from([
    0xff,
    0xd8,
    ...sof(marker, precision),
    ...seg(0xda, [3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0]),
    0x12,
    0x34,
    0xff,
    0xd9,
  ]);

describe("JPEG tile merging", () => {
  it("puts the tables between the tile's SOI and the rest, APP14 first for RGB", () => {
    const t = tile();
    const ycc = Buffer.concat(mergedPieces(t, tilePrefix(tables, false), "tile 0"));
    expect(ycc.equals(Buffer.concat([t.subarray(0, 2), tables.subarray(2, -2), t.subarray(2)]))).toBe(true);
    const prefix = tilePrefix(tables, true);
    const rgb = Buffer.concat(mergedPieces(t, prefix, "tile 0"));
    expect(rgb.subarray(2, 18).equals(APP14_RGB)).toBe(true);
    expect(rgb.length).toBe(mergedLength(t.length, prefix));
    expect(rgb.includes(Buffer.from("JFIF"))).toBe(false);
  });

  it("copies a complete tile as it is when there are no tables", () => {
    const t = tile();
    expect(mergedPieces(t, tilePrefix(undefined, false), "tile 0")).toEqual([t]);
  });

  it("reads the frame header and passes only 8-bit baseline or extended sequential through", () => {
    const info = readSof(tile(), "tile 0");
    expect(info).toMatchObject({ process: 0, precision: 8, width: 64, height: 128 });
    expect(info.components.map((c) => [c.id, c.h, c.v])).toEqual([
      [1, 2, 2],
      [2, 1, 1],
      [3, 1, 1],
    ]);
    expect(passThroughSyntax(info)).toBe("1.2.840.10008.1.2.4.50");
    expect(passThroughSyntax(readSof(tile(0xc1), "t"))).toBe("1.2.840.10008.1.2.4.51");
    expect(passThroughSyntax(readSof(tile(0xc2), "t"))).toBeUndefined();
    expect(passThroughSyntax(readSof(tile(0xc1, 12), "t"))).toBeUndefined();
  });

  it("rejects tiles and tables that are not JPEG", () => {
    expect(() => mergedPieces(Buffer.from("not a jpeg"), Buffer.alloc(0), "tile 7 of IFD 2")).toThrow(
      new WsiInputError("malformed JPEG tile: tile 7 of IFD 2 does not start with SOI"),
    );
    expect(() => tilePrefix(Buffer.from("garbage!"), false)).toThrow(WsiInputError);
    expect(() => readSof(Buffer.from([0xff, 0xd8, ...seg(0xda, [0]), 0xff, 0xd9]), "tile 1")).toThrow(
      /no frame header/,
    );
  });
});

describe("data set values", () => {
  it("formats DS within 16 characters", () => {
    for (const x of [0.000499, 0.00049900000000001, 1 / 3, 123456789.123456, 1e-12, 20])
      expect(formatDs(x).length).toBeLessThanOrEqual(16);
    expect(formatDs(0.000499)).toBe("0.000499");
    expect(Number(formatDs(1 / 3))).toBeCloseTo(1 / 3, 10);
  });

  it("derives stable, distinct 2.25 UIDs", () => {
    const a = derivedUid("2.25.1", "level", 0);
    expect(a).toMatch(/^2\.25\.[1-9][0-9]*$/);
    expect(a.length).toBeLessThanOrEqual(64);
    expect(derivedUid("2.25.1", "level", 0)).toBe(a);
    expect(derivedUid("2.25.1", "level", 1)).not.toBe(a);
  });

  it("builds a well-formed sRGB ICC profile", () => {
    expect(SRGB_ICC.readUInt32BE(0)).toBe(SRGB_ICC.length);
    expect(SRGB_ICC.toString("latin1", 36, 40)).toBe("acsp");
    expect(SRGB_ICC.toString("latin1", 12, 24)).toBe("mntrRGB XYZ ");
    const tags = SRGB_ICC.readUInt32BE(128);
    for (let i = 0; i < tags; i++) {
      const offset = SRGB_ICC.readUInt32BE(136 + i * 12);
      const size = SRGB_ICC.readUInt32BE(140 + i * 12);
      expect(offset % 4).toBe(0);
      expect(offset + size).toBeLessThanOrEqual(SRGB_ICC.length);
    }
  });
});
