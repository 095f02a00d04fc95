import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WsiInputError } from "../../src/wsi/errors.js";
import { TAG, TiffFile } from "../../src/wsi/tiff.js";
import { sourceImage, vips, vipsPyramid } from "./support/fixtures.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "fiona-tiff-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function images(file: string) {
  const t = await TiffFile.open(file);
  await t.close();
  return t.images;
}

/** Byte position of a tag's entry in the first IFD of a little-endian classic TIFF. */
function entryOf(file: Buffer, tag: number): number {
  const ifd = file.readUInt32LE(4);
  const count = file.readUInt16LE(ifd);
  for (let i = 0; i < count; i++) if (file.readUInt16LE(ifd + 2 + i * 12) === tag) return ifd + 2 + i * 12;
  throw new Error(`tag ${tag} not in IFD 0`);
}

async function openError(bytes: Buffer, name: string): Promise<Error> {
  const file = path.join(dir, name);
  writeFileSync(file, bytes);
  const err = await TiffFile.open(file).catch((e: unknown) => e as Error);
  expect(err).toBeInstanceOf(WsiInputError);
  return err as Error;
}

describe("TiffFile", () => {
  it("reads a vips pyramid: levels, tiles, tables and flags", async () => {
    const file = vipsPyramid(dir, { name: "p.tif", width: 1000, height: 700 });
    const t = await TiffFile.open(file);
    try {
      expect(t.bigTiff).toBe(false);
      expect(t.images.map((i) => [i.width, i.height])).toEqual([
        [1000, 700],
        [500, 350],
        [250, 175],
      ]);
      const [l0, l1] = t.images;
      expect(l0).toMatchObject({
        tiled: true,
        tileWidth: 256,
        tileHeight: 256,
        compression: 7,
        photometric: 6,
        newSubfileType: 0,
      });
      expect(l1!.newSubfileType).toBe(1);
      expect(l0!.offsets.length).toBe(4 * 3);
      expect(l0!.jpegTables?.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
      const tile = await t.read(l0!.offsets[5]!, l0!.byteCounts[5]!);
      expect([...tile.subarray(0, 2)]).toEqual([0xff, 0xd8]);
      expect([...tile.subarray(-2)]).toEqual([0xff, 0xd9]);
    } finally {
      await t.close();
    }
  });

  it("reads big-endian files the same as little-endian ones", async () => {
    const le = vipsPyramid(dir, { name: "le.tif" });
    const be = path.join(dir, "be.tif");
    execFileSync("tiffcp", ["-B", le, be]);
    expect(readFileSync(be).toString("latin1", 0, 2)).toBe("MM");
    const [a, b] = [await images(le), await images(be)];
    // tiffcp re-writes the JPEG data, so compare the structure, not the bytes.
    const shape = (i: (typeof a)[number]) => [
      i.width,
      i.height,
      i.tileWidth,
      i.tileHeight,
      i.offsets.length,
      i.compression,
    ];
    expect(b.map(shape)).toEqual(a.map(shape));
    expect(b[0]!.byteCounts.every((n) => n > 0)).toBe(true);
  });

  it("follows SubIFDs in BigTIFF files", async () => {
    const file = vipsPyramid(dir, { name: "big.tif", bigtiff: true, subifd: true });
    const found = await images(file);
    expect(found.map((i) => i.label)).toEqual(["IFD 0", "SubIFD 0 of IFD 0", "SubIFD 1 of IFD 0"]);
    expect(found.slice(1).every((i) => i.parent === 0 && i.topLevelIndex === undefined)).toBe(true);
    expect(found[0]!.topLevelIndex).toBe(0);
  });

  it("reads resolution, description and ICC profile", async () => {
    const src = sourceImage(dir, 300, 200);
    const file = path.join(dir, "res.tif");
    vips("tiffsave", src, file, "--tile", "--xres", "4", "--yres", "2", "--compression", "jpeg");
    const [img] = await images(file);
    expect(img!.resolutionUnit).toBe(3);
    expect(img!.xResolution).toBeCloseTo(40, 3);
    expect(img!.yResolution).toBeCloseTo(20, 3);
    expect(img!.iccProfile).toBeUndefined();
    expect(TAG.IccProfile).toBe(34675);
  });

  it("names the bad tag, IFD or count in malformed files", async () => {
    const good = readFileSync(vipsPyramid(dir, { name: "good.tif" }));

    const noEntries = Buffer.from(good);
    noEntries.writeUInt16LE(0, noEntries.readUInt32LE(4));
    expect((await openError(noEntries, "no-entries.tif")).message).toMatch(
      /^malformed TIFF: IFD 0 at byte \d+ declares 0 entries$/,
    );

    const countsBeyond = Buffer.from(good);
    countsBeyond.writeUInt32LE(good.length - 4, entryOf(countsBeyond, TAG.TileByteCounts) + 8);
    expect((await openError(countsBeyond, "counts-beyond.tif")).message).toMatch(
      /^truncated TIFF: tag 325 of IFD 0 ends at byte \d+ beyond the file size \d+$/,
    );

    const wrongTile = Buffer.from(good);
    wrongTile.writeUInt16LE(128, entryOf(wrongTile, TAG.TileWidth) + 8);
    expect((await openError(wrongTile, "wrong-tile.tif")).message).toBe(
      "malformed TIFF: IFD 0 has 12 tile offsets and 12 byte counts, expected 24",
    );

    const version = Buffer.from(good);
    version.writeUInt16LE(44, 2);
    expect((await openError(version, "version.tif")).message).toBe(
      "not a TIFF file: bad version 44 (expected 42 or 43)",
    );
    expect((await openError(Buffer.from("II*"), "short.tif")).message).toBe("not a TIFF file: only 3 bytes");
  });
});
