import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertSlide, WsiInputError, type ConvertResult } from "../../src/wsi/convert.js";
import { TiffFile, type TiffImage } from "../../src/wsi/tiff.js";
import {
  DATASET,
  SVS_ICC,
  dciodvfy,
  dumpValue,
  encapsulatedFrames,
  fakeSvs,
  markerEncodings,
  thumbnailFile,
  vips,
  vipsPyramid,
} from "./support/fixtures.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "fiona-wsi-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function tiffImages(file: string): Promise<TiffImage[]> {
  const t = await TiffFile.open(file);
  await t.close();
  return t.images;
}

/** A frame's JPEG bytes without the even-length pad. */
function unpadded(frame: Buffer): Buffer {
  return frame.at(-1) === 0 && frame.at(-3) === 0xff && frame.at(-2) === 0xd9 ? frame.subarray(0, -1) : frame;
}

/** Decode a JPEG with vips to raw RGB bytes. */
function vipsDecode(jpeg: Buffer, name: string): Buffer {
  const jpg = path.join(dir, `${name}.jpg`);
  writeFileSync(jpg, jpeg);
  vips("rawsave", jpg, path.join(dir, `${name}.raw`));
  return readFileSync(path.join(dir, `${name}.raw`));
}

/** The first tile of a page of the TIFF, decoded by vips (libtiff). */
function sourceTile(file: string, page: number, w: number, h: number, name: string): Buffer {
  vips("crop", `${file}[page=${page}]`, path.join(dir, `${name}.v`), "0", "0", String(w), String(h));
  vips("rawsave", path.join(dir, `${name}.v`), path.join(dir, `${name}.raw`));
  return readFileSync(path.join(dir, `${name}.raw`));
}

/** Frame 1 decoded by dcmtk (honours the DICOM PhotometricInterpretation). */
function dcmtkFrame(file: string, name: string): Buffer {
  const out = path.join(dir, `${name}.ppm`);
  execFileSync("dcmj2pnm", ["+F", "1", file, out]);
  const ppm = readFileSync(out);
  let p = 0;
  for (let fields = 0; fields < 4; p++) if (ppm[p] === 0x0a || ppm[p] === 0x20) fields++;
  return ppm.subarray(p);
}

function meanAbsDiff(a: Buffer, b: Buffer): number {
  expect(a.length).toBe(b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

function expectClean(result: ConvertResult): void {
  for (const inst of result.instances) {
    const { errors, warnings } = dciodvfy(inst.path);
    expect(errors, `${inst.path}: ${errors.join("\n")}`).toEqual([]);
    expect(warnings, `${inst.path}: ${warnings.join("\n")}`).toEqual([]);
  }
}

function expectLevelsMatch(result: ConvertResult, levels: TiffImage[]): void {
  const volumes = result.instances.filter((i) => i.imageType === "VOLUME");
  expect(volumes.map((v) => [v.totalColumns, v.totalRows])).toEqual(levels.map((l) => [l.width, l.height]));
  for (const [n, v] of volumes.entries()) {
    const l = levels[n]!;
    const frames = Math.ceil(l.width / l.tileWidth) * Math.ceil(l.height / l.tileHeight);
    expect(v.frames).toBe(frames);
    expect(dumpValue(v.path, "0028,0008")).toBe(String(frames));
    expect(dumpValue(v.path, "0048,0006")).toBe(String(l.width));
    expect(dumpValue(v.path, "0048,0007")).toBe(String(l.height));
    expect(dumpValue(v.path, "0028,0010")).toBe(String(l.tileHeight));
    expect(dumpValue(v.path, "0028,0011")).toBe(String(l.tileWidth));
    expect(dumpValue(v.path, "0020,9311")).toBe("TILED_FULL");
  }
}

const hash = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

describe("convertSlide on vips JPEG pyramids", () => {
  it("writes one dciodvfy-clean TILED_FULL instance per level, tiles passed through byte for byte (YCbCr)", async () => {
    const input = vipsPyramid(dir, { name: "ycc.tif" });
    const levels = await tiffImages(input);
    const progress: number[] = [];
    const result = await convertSlide(input, path.join(dir, "out-ycc"), DATASET, {
      onProgress: (p) => progress.push(p.level),
    });
    expect(levels.length).toBeGreaterThan(2);
    expectLevelsMatch(result, levels);
    expectClean(result);
    expect(result.dropped).toEqual([]);
    expect(progress).toContain(levels.length - 1);
    const level0 = result.instances[0]!;
    expect(level0.transferSyntaxUid).toBe("1.2.840.10008.1.2.4.50");
    expect(level0.reencoded).toBe(false);
    expect(dumpValue(level0.path, "0028,0004")).toBe("YBR_FULL_422");
    expect(dumpValue(level0.path, "0008,0008")).toBe("ORIGINAL\\PRIMARY\\VOLUME\\NONE");
    expect(dumpValue(result.instances[1]!.path, "0008,0008")).toBe("DERIVED\\PRIMARY\\VOLUME\\RESAMPLED");

    // Pass-through: every frame is SOI + the level's tables + the tile after its SOI, and the BOT points at it.
    const { bot, frames } = encapsulatedFrames(level0.path);
    expect(frames.length).toBe(level0.frames);
    const tiff = await TiffFile.open(input);
    try {
      const l0 = tiff.images[0]!;
      let offset = 0;
      for (const [i, frame] of frames.entries()) {
        expect(frame.length % 2).toBe(0);
        expect(bot[i]).toBe(offset);
        offset += 8 + frame.length;
        const tile = await tiff.read(l0.offsets[i]!, l0.byteCounts[i]!);
        const jpeg = unpadded(frame);
        expect(jpeg.subarray(jpeg.length - (tile.length - 2)).equals(tile.subarray(2))).toBe(true);
        expect(jpeg.subarray(2, 2 + l0.jpegTables!.length - 4).equals(l0.jpegTables!.subarray(2, -2))).toBe(
          true,
        );
      }
    } finally {
      await tiff.close();
    }
    // Decoded: the same pixels as the source tile (vips both ways), and dcmtk agrees within JPEG rounding.
    const source = sourceTile(input, 0, 256, 256, "ycc-src");
    expect(vipsDecode(unpadded(frames[0]!), "ycc-frame").equals(source)).toBe(true);
    expect(meanAbsDiff(dcmtkFrame(level0.path, "ycc-dcmtk"), source)).toBeLessThan(1.5);
  });

  it("marks RGB-coded tiles with Adobe APP14 (transform 0), never JFIF, and decodes them to the source colours", async () => {
    const input = vipsPyramid(dir, { name: "rgb.tif", q: 92 });
    const result = await convertSlide(input, path.join(dir, "out-rgb"), DATASET);
    expectLevelsMatch(result, await tiffImages(input));
    expectClean(result);
    const level0 = result.instances[0]!;
    expect(dumpValue(level0.path, "0028,0004")).toBe("RGB");
    const frame = unpadded(encapsulatedFrames(level0.path).frames[0]!);
    expect([...frame.subarray(0, 4)]).toEqual([0xff, 0xd8, 0xff, 0xee]);
    expect(frame.subarray(6, 11).toString("latin1")).toBe("Adobe");
    expect(frame[17]).toBe(0);
    expect(frame.includes(Buffer.from("JFIF\0", "latin1"))).toBe(false);
    const source = sourceTile(input, 0, 256, 256, "rgb-src");
    expect(vipsDecode(frame, "rgb-frame").equals(source)).toBe(true);
    expect(meanAbsDiff(dcmtkFrame(level0.path, "rgb-dcmtk"), source)).toBeLessThan(1.5);
  });

  it("reads BigTIFF with the levels in SubIFDs", async () => {
    const input = vipsPyramid(dir, { name: "big-sub.tif", bigtiff: true, subifd: true, tile: 128 });
    expect(readFileSync(input).readUInt16LE(2)).toBe(43);
    const images = await tiffImages(input);
    expect(images.filter((i) => i.parent === 0).length).toBe(images.length - 1);
    const result = await convertSlide(input, path.join(dir, "out-big"), DATASET);
    expect(result.instances.length).toBe(images.length);
    expectLevelsMatch(result, images);
    expectClean(result);
  });

  it("writes the same SOP Instance UIDs again on a re-run", async () => {
    const input = vipsPyramid(dir, { name: "rerun.tif" });
    const a = await convertSlide(input, path.join(dir, "out-rerun"), DATASET);
    const b = await convertSlide(input, path.join(dir, "out-rerun"), DATASET);
    expect(b.instances.map((i) => i.sopInstanceUid)).toEqual(a.instances.map((i) => i.sopInstanceUid));
    expect(new Set(a.instances.map((i) => i.sopInstanceUid)).size).toBe(a.instances.length);
    expect(readdirSync(path.join(dir, "out-rerun")).sort()).toEqual(
      a.instances.map((i) => path.basename(i.path)).sort(),
    );
  });
});

describe("convertSlide on an Aperio-like SVS", () => {
  it("drops label, macro and thumbnail, keeps no identity from the descriptions, takes MPP and the ICC profile", async () => {
    const input = await fakeSvs(dir);
    const before = hash(input);
    const result = await convertSlide(input, path.join(dir, "out-svs"), DATASET);
    const images = await tiffImages(input);
    expect(result.dropped).toEqual([
      { ifd: 1, kind: "thumbnail" },
      { ifd: images.length - 2, kind: "label" },
      { ifd: images.length - 1, kind: "macro" },
    ]);
    expect(result.instances.map((i) => i.imageType)).toEqual(Array(images.length - 3).fill("VOLUME"));
    expectClean(result);
    for (const inst of result.instances) {
      const bytes = readFileSync(inst.path);
      for (const m of markerEncodings())
        expect(bytes.includes(m), `${m.toString("latin1")} in ${inst.path}`).toBe(false);
      expect(bytes.includes(Buffer.from("Aperio"))).toBe(false);
      expect(bytes.includes(SVS_ICC)).toBe(true);
    }
    const level0 = result.instances[0]!;
    expect(dumpValue(level0.path, "0028,0030")).toBe("0.000499\\0.000499");
    expect(dumpValue(result.instances[1]!.path, "0028,0030")).toBe("0.000998\\0.000998");
    expect(dumpValue(level0.path, "0048,0112")).toBe("20");
    expect(dumpValue(level0.path, "0010,0020")).toBe("PROJ_0001");
    expect(dumpValue(level0.path, "0040,0512")).toBe("SLIDE-1");
    expect(dumpValue(level0.path, "0018,1000")).toBe("UNKNOWN");
    expect(hash(input)).toBe(before);
  });

  it("keeps the thumbnail as a single-frame THUMBNAIL instance when asked", async () => {
    const input = await fakeSvs(dir);
    const result = await convertSlide(input, path.join(dir, "out-thumb"), DATASET, { keepThumbnail: true });
    expect(result.dropped.map((d) => d.kind)).toEqual(["label", "macro"]);
    const thumb = result.instances.find((i) => i.imageType === "THUMBNAIL")!;
    expect(thumb).toMatchObject({
      frames: 1,
      totalColumns: 200,
      totalRows: 140,
      tileWidth: 200,
      tileHeight: 140,
    });
    expect(dumpValue(thumb.path, "0008,0008")).toBe("DERIVED\\PRIMARY\\THUMBNAIL\\RESAMPLED");
    expectClean(result);
    const bytes = readFileSync(thumb.path);
    for (const m of markerEncodings()) expect(bytes.includes(m)).toBe(false);
  });
});

describe("convertSlide on an SVS with a zero-length tile", () => {
  for (const rgb of [false, true]) {
    it(`writes a white frame in its place (${rgb ? "RGB" : "YCbCr"})`, async () => {
      const sub = path.join(dir, `empty-tile-${rgb}`);
      mkdirSync(sub);
      const input = await fakeSvs(sub, { emptyTile: 5, rgb });
      const result = await convertSlide(input, path.join(sub, "out"), DATASET);
      expectClean(result);
      const { frames } = encapsulatedFrames(result.instances[0]!.path);
      const white = vipsDecode(unpadded(frames[5]!), `white-${rgb}`);
      expect(white.length).toBe(256 * 256 * 3);
      expect(white.every((v) => v === 255)).toBe(true);
      expect(vipsDecode(unpadded(frames[4]!), `neighbour-${rgb}`).every((v) => v === 255)).toBe(false);
    });
  }
});

describe("convertSlide on an SVS with a JPEG thumbnail in strips", () => {
  it("joins the strips into one frame with restart markers, without re-encoding", async () => {
    const sub = path.join(dir, "jpeg-thumb");
    mkdirSync(sub);
    const input = await fakeSvs(sub, { jpegThumbnail: true });
    const result = await convertSlide(input, path.join(sub, "out"), DATASET, { keepThumbnail: true });
    const thumb = result.instances.find((i) => i.imageType === "THUMBNAIL")!;
    expect(thumb).toMatchObject({ frames: 1, totalColumns: 200, totalRows: 140, reencoded: false });
    expect(thumb.transferSyntaxUid).toBe("1.2.840.10008.1.2.4.50");
    expectClean(result);
    const frame = unpadded(encapsulatedFrames(thumb.path).frames[0]!);
    expect(frame.includes(Buffer.from([0xff, 0xdd, 0x00, 0x04]))).toBe(true);
    const source = sourceTile(thumbnailFile(sub), 0, 200, 140, "thumb-src");
    // Chroma upsampling now sees across the strip boundary, so allow JPEG rounding there.
    expect(meanAbsDiff(vipsDecode(frame, "thumb-frame"), source)).toBeLessThan(1);
    expect(meanAbsDiff(dcmtkFrame(thumb.path, "thumb-dcmtk"), source)).toBeLessThan(1.5);
  });
});

describe("convertSlide on losslessly compressed pyramids", () => {
  for (const [name, opts] of [
    ["LZW", { compression: "lzw" as const }],
    [
      "deflate with the horizontal predictor",
      { compression: "deflate" as const, predictor: "horizontal" as const },
    ],
  ] as const) {
    it(`writes ${name} levels as native RGB, pixel for pixel`, async () => {
      const input = vipsPyramid(dir, {
        name: `${opts.compression}.tif`,
        tile: 128,
        width: 600,
        height: 400,
        ...opts,
      });
      const result = await convertSlide(input, path.join(dir, `out-${opts.compression}`), DATASET);
      expectLevelsMatch(result, await tiffImages(input));
      expectClean(result);
      const level0 = result.instances[0]!;
      expect(level0).toMatchObject({ transferSyntaxUid: "1.2.840.10008.1.2.1", reencoded: true });
      expect(dumpValue(level0.path, "0028,2110")).toBe("00");
      const bytes = readFileSync(level0.path);
      const frameBytes = 128 * 128 * 3;
      const pixels = bytes.subarray(bytes.length - frameBytes * level0.frames);
      expect(
        pixels.subarray(0, frameBytes).equals(sourceTile(input, 0, 128, 128, `${opts.compression}-src`)),
      ).toBe(true);
    });
  }
});

describe("convertSlide on bad input", () => {
  async function expectInputError(input: string, message: RegExp): Promise<void> {
    const before = hash(input);
    const out = path.join(dir, `out-bad-${path.basename(input)}`);
    const err = await convertSlide(input, out, DATASET).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WsiInputError);
    expect((err as Error).message).toMatch(message);
    expect(hash(input)).toBe(before);
    expect(readdirSync(dir).includes(path.basename(out)) ? readdirSync(out) : []).toEqual([]);
  }

  it("rejects a truncated file, naming the tile and the byte", async () => {
    const full = readFileSync(vipsPyramid(dir, { name: "to-truncate.tif" }));
    const input = path.join(dir, "truncated.tif");
    const images = await tiffImages(path.join(dir, "to-truncate.tif"));
    const l0 = images[0]!;
    const cut = l0.offsets.at(-1)! + 10;
    writeFileSync(input, full.subarray(0, cut));
    // libtiff writes each IFD after its image data, so a cut-off upload loses the IFD first.
    await expectInputError(
      input,
      /^truncated TIFF: IFD 0 at byte \d+ ends at byte \d+ beyond the file size \d+$/,
    );
  });

  it("rejects a file whose level 0 tile data lies beyond the end", async () => {
    const src = vipsPyramid(dir, { name: "tile-beyond-src.tif" });
    const images = await tiffImages(src);
    const file = readFileSync(src);
    // Point level 0's first tile past the end of the file by rewriting its entry in TileOffsets.
    file.writeUInt32LE(file.length + 1000, findLongArray(file, images[0]!.offsets));
    const input = path.join(dir, "tile-beyond.tif");
    writeFileSync(input, file);
    await expectInputError(
      input,
      /truncated TIFF: tile 0 of IFD 0 ends at byte \d+ beyond the file size \d+/,
    );
  });

  it("rejects bad magic, a first IFD beyond the end and an IFD loop", async () => {
    const text = path.join(dir, "not-a-tiff.tif");
    writeFileSync(text, "this is not a slide at all\n");
    await expectInputError(text, /not a TIFF file: bad magic/);

    const good = readFileSync(vipsPyramid(dir, { name: "to-break.tif" }));
    const beyond = Buffer.from(good);
    beyond.writeUInt32LE(good.length + 4096, 4);
    writeFileSync(path.join(dir, "ifd-beyond.tif"), beyond);
    await expectInputError(
      path.join(dir, "ifd-beyond.tif"),
      /truncated TIFF: IFD 0 at byte \d+ ends at byte \d+ beyond the file size/,
    );

    const loop = Buffer.from(good);
    const first = loop.readUInt32LE(4);
    let ifd = first;
    for (;;) {
      const nextPos = ifd + 2 + loop.readUInt16LE(ifd) * 12;
      const next = loop.readUInt32LE(nextPos);
      if (next === 0) {
        loop.writeUInt32LE(first, nextPos);
        break;
      }
      ifd = next;
    }
    writeFileSync(path.join(dir, "ifd-loop.tif"), loop);
    await expectInputError(
      path.join(dir, "ifd-loop.tif"),
      /IFD \d+ at byte \d+ loops back to an earlier IFD/,
    );
  });

  it("rejects compressions it can neither pass through nor decode", async () => {
    const input = path.join(dir, "webp.tif");
    vips("tiffsave", vipsPyramid(dir, { name: "webp-src.tif" }), input, "--tile", "--compression", "webp");
    await expectInputError(input, /^unsupported compression 50001 in IFD 0$/);
  });

  it("rejects JPEG 2000 whose colour transform happened outside the codestream", async () => {
    const src = path.join(dir, "j2k-ycc-src.tif");
    vips(
      "tiffsave",
      vipsPyramid(dir, { name: "j2k-base.tif" }),
      src,
      "--tile",
      "--compression",
      "jp2k",
      "--lossless",
    );
    const [image] = await tiffImages(src);
    const file = readFileSync(src);
    const tile = image!.offsets[0]!;
    const cod = file.indexOf(Buffer.from([0xff, 0x52]), tile);
    file[cod + 8] = 0; // MCT off
    file.writeUInt16LE(6, entryValue(file, 262)); // Photometric YCbCr
    const input = path.join(dir, "j2k-ycc.tif");
    writeFileSync(input, file);
    await expectInputError(
      input,
      /^unsupported compression 33004 \(JPEG 2000, YCbCr converted outside the codestream\) in IFD 0$/,
    );
  });
});

describe("convertSlide on JPEG 2000 tiles", () => {
  for (const lossless of [true, false]) {
    it(`passes ${lossless ? "reversible" : "irreversible"} codestreams through unchanged`, async () => {
      const input = path.join(dir, `j2k-${lossless}.tif`);
      const args = [
        "--tile",
        "--pyramid",
        "--compression",
        "jp2k",
        "--tile-width",
        "128",
        "--tile-height",
        "128",
      ];
      vips(
        "tiffsave",
        vipsPyramid(dir, { name: `j2k-src-${lossless}.tif` }),
        input,
        ...args,
        ...(lossless ? ["--lossless"] : []),
      );
      const result = await convertSlide(input, path.join(dir, `out-j2k-${lossless}`), DATASET);
      const levels = await tiffImages(input);
      expectLevelsMatch(result, levels);
      expectClean(result);
      const level0 = result.instances[0]!;
      expect(level0.transferSyntaxUid).toBe(lossless ? "1.2.840.10008.1.2.4.90" : "1.2.840.10008.1.2.4.91");
      expect(dumpValue(level0.path, "0028,0004")).toBe(lossless ? "YBR_RCT" : "YBR_ICT");
      const { frames } = encapsulatedFrames(level0.path);
      const tiff = await TiffFile.open(input);
      try {
        const tile = await tiff.read(levels[0]!.offsets[3]!, levels[0]!.byteCounts[3]!);
        expect(frames[3]!.subarray(0, tile.length).equals(tile)).toBe(true);
      } finally {
        await tiff.close();
      }
    });
  }
});

describe("convertSlide cancellation", () => {
  it("stops when the signal aborts and leaves no partial file", async () => {
    const input = vipsPyramid(dir, { name: "abort.tif", width: 3000, height: 3000, tile: 64 });
    const out = path.join(dir, "out-abort");
    const ac = new AbortController();
    const err = await convertSlide(input, out, DATASET, {
      signal: ac.signal,
      onProgress: () => ac.abort(new Error("stop")),
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe("stop");
    expect(readdirSync(out).filter((n) => n.endsWith(".partial"))).toEqual([]);
  });
});

/** Position of the inline value of a tag in the first IFD of a little-endian classic TIFF. */
function entryValue(file: Buffer, tag: number): number {
  const ifd = file.readUInt32LE(4);
  for (let i = 0; i < file.readUInt16LE(ifd); i++)
    if (file.readUInt16LE(ifd + 2 + i * 12) === tag) return ifd + 2 + i * 12 + 8;
  throw new Error(`tag ${tag} not found`);
}

/** Position of a LONG array (the tile offsets) in the file. */
function findLongArray(file: Buffer, values: number[]): number {
  const needle = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => needle.writeUInt32LE(v, i * 4));
  const at = file.indexOf(needle);
  if (at < 0) throw new Error("tile offsets not found");
  return at;
}
