/**
 * Slide fixtures generated with libvips, an Aperio-like SVS (thumbnail, label, macro, identity in every
 * description) built from a vips pyramid with the small TIFF writer, and readers for the DICOM output.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import type { SlideDataset } from "../../../src/wsi/convert.js";
import { SRGB_ICC } from "../../../src/wsi/srgb-icc.js";
import { TiffFile } from "../../../src/wsi/tiff.js";
import { writeTiff, type ImageSpec, type TagSpec } from "./tiff-writer.js";

const MARKER = "ZZMARKER-Q7X";

/** The ICC profile of the fake SVS: sRGB with a recognisable reserved-header stamp. */
export const SVS_ICC = Buffer.from(SRGB_ICC);
SVS_ICC.write("SVS-ICC!", 100, "latin1");

export const DATASET: SlideDataset = {
  patientName: "PROJ_0001",
  patientId: "PROJ_0001",
  studyInstanceUid: "2.25.101",
  seriesInstanceUid: "2.25.102",
  studyId: "S1",
  studyDate: "20260101",
  studyTime: "120000",
  containerIdentifier: "SLIDE-1",
  specimenIdentifier: "SPEC-1",
  specimenUid: "2.25.103",
  stain: "H&E",
  pathology: { block: "A1", department: "Pathology" },
  institutionName: "PROJ",
};

export function vips(...args: string[]): void {
  execFileSync("vips", args, { stdio: ["ignore", "ignore", "pipe"] });
}

/** A 3-band 8-bit image with texture (noise over a gradient) of the given size, as a .v file. */
export function sourceImage(dir: string, width: number, height: number): string {
  const noise = path.join(dir, `noise-${width}x${height}.v`);
  const grey = path.join(dir, `grey-${width}x${height}.v`);
  const out = path.join(dir, `src-${width}x${height}.v`);
  vips("gaussnoise", noise, String(width), String(height), "--mean", "128", "--sigma", "40");
  vips("cast", noise, grey, "uchar");
  vips("bandjoin", `${grey} ${grey} ${grey}`, out);
  return out;
}

export interface PyramidOptions {
  width?: number;
  height?: number;
  tile?: number;
  compression?: "jpeg" | "lzw" | "deflate" | "none" | "jp2k";
  q?: number;
  bigtiff?: boolean;
  subifd?: boolean;
  predictor?: "none" | "horizontal";
  name?: string;
}

/** `vips tiffsave --tile --pyramid` of a textured image. */
export function vipsPyramid(dir: string, o: PyramidOptions = {}): string {
  const src = sourceImage(dir, o.width ?? 1000, o.height ?? 700);
  const out = path.join(dir, o.name ?? "slide.tif");
  const tile = String(o.tile ?? 256);
  const args = ["tiffsave", src, out, "--tile", "--pyramid", "--compression", o.compression ?? "jpeg"];
  args.push("--tile-width", tile, "--tile-height", tile);
  if (o.q !== undefined) args.push("--Q", String(o.q));
  if (o.bigtiff) args.push("--bigtiff");
  if (o.subifd) args.push("--subifd");
  if (o.predictor) args.push("--predictor", o.predictor);
  vips(...args);
  return out;
}

/** Uncompressed RGB pixels whose bytes spell the marker, repeated (a "rendered" label). */
function markerPixels(width: number, height: number): Buffer {
  const b = Buffer.alloc(width * height * 3);
  for (let i = 0; i < b.length; i += MARKER.length) b.write(MARKER, i, "latin1");
  return b;
}

function gradientPixels(width: number, height: number): Buffer {
  const b = Buffer.alloc(width * height * 3);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7) & 0xff;
  return b;
}

function strippedRgb(width: number, height: number, pixels: Buffer, extra: TagSpec[]): ImageSpec {
  const rows = 16;
  const chunks: Buffer[] = [];
  for (let y = 0; y < height; y += rows)
    chunks.push(pixels.subarray(y * width * 3, Math.min(height, y + rows) * width * 3));
  return {
    tiled: false,
    chunks,
    tags: [
      { tag: 256, type: 4, values: [width] },
      { tag: 257, type: 4, values: [height] },
      { tag: 258, type: 3, values: [8, 8, 8] },
      { tag: 259, type: 3, values: [1] },
      { tag: 262, type: 3, values: [2] },
      { tag: 277, type: 3, values: [3] },
      { tag: 278, type: 4, values: [rows] },
      { tag: 284, type: 3, values: [1] },
      ...extra,
    ],
  };
}

/** The thumbnail source of fakeSvs with jpegThumbnail: vips's stripped JPEG TIFF (128 rows per strip). */
export const thumbnailFile = (dir: string) => path.join(dir, "thumbnail-strips.tif");

/** A 200x140 JPEG image in strips (as an Aperio thumbnail is), from vips. */
async function jpegStrips(dir: string, extra: TagSpec): Promise<ImageSpec> {
  const src = sourceImage(dir, 200, 140);
  vips("tiffsave", src, thumbnailFile(dir), "--compression", "jpeg");
  const tiff = await TiffFile.open(thumbnailFile(dir));
  try {
    const [image] = tiff.images;
    const chunks: Buffer[] = [];
    for (let s = 0; s < image!.offsets.length; s++)
      chunks.push(await tiff.read(image!.offsets[s]!, image!.byteCounts[s]!));
    return {
      tiled: false,
      chunks,
      tags: [
        { tag: 256, type: 4, values: [image!.width] },
        { tag: 257, type: 4, values: [image!.height] },
        { tag: 258, type: 3, values: [8, 8, 8] },
        { tag: 259, type: 3, values: [7] },
        { tag: 262, type: 3, values: [image!.photometric] },
        { tag: 277, type: 3, values: [3] },
        { tag: 278, type: 4, values: [image!.tileHeight] },
        { tag: 284, type: 3, values: [1] },
        { tag: 347, type: 7, values: image!.jpegTables! },
        extra,
      ],
    };
  } finally {
    await tiff.close();
  }
}

/**
 * An Aperio-like SVS: level 0, a stripped thumbnail as IFD 1, the lower levels, then a label
 * (NewSubfileType 1) and a macro (9) whose pixels spell MARKER. Every description carries MARKER in
 * Filename, Title, User, Barcode and ScanScope ID; Artist (315) carries it too.
 */
export async function fakeSvs(
  dir: string,
  o: { rgb?: boolean; jpegThumbnail?: boolean; emptyTile?: number } = {},
): Promise<string> {
  const pyramid = vipsPyramid(dir, { name: "svs-source.tif", ...(o.rgb ? { q: 92 } : {}) });
  const tiff = await TiffFile.open(pyramid);
  const identity = `Filename = ${MARKER}|Title = ${MARKER}|User = ${MARKER}|Barcode = ${MARKER}|ScanScope ID = ${MARKER}|Date = 07/24/2023|Time = 09:59:15`;
  const description = (line: string) =>
    `Aperio Image Library v12.0.5\r\n${line}|AppMag = 20|MPP = 0.4990|${identity}`;
  const levels: ImageSpec[] = [];
  try {
    for (const [i, image] of tiff.images.entries()) {
      const chunks: Buffer[] = [];
      for (let t = 0; t < image.offsets.length; t++)
        chunks.push(
          i === 0 && t === o.emptyTile
            ? Buffer.alloc(0)
            : await tiff.read(image.offsets[t]!, image.byteCounts[t]!),
        );
      levels.push({
        tiled: true,
        chunks,
        tags: [
          { tag: 256, type: 4, values: [image.width] },
          { tag: 257, type: 4, values: [image.height] },
          { tag: 258, type: 3, values: [8, 8, 8] },
          { tag: 259, type: 3, values: [7] },
          { tag: 262, type: 3, values: [image.photometric] },
          {
            tag: 270,
            type: 2,
            values: description(`${image.width}x${image.height} (256x256) JPEG/YCC Q=75`),
          },
          { tag: 277, type: 3, values: [3] },
          { tag: 284, type: 3, values: [1] },
          { tag: 315, type: 2, values: MARKER },
          { tag: 322, type: 3, values: [image.tileWidth] },
          { tag: 323, type: 3, values: [image.tileHeight] },
          { tag: 347, type: 7, values: image.jpegTables! },
          ...(i === 0 ? [{ tag: 34675, type: 7 as const, values: SVS_ICC }] : []),
        ],
      });
    }
  } finally {
    await tiff.close();
  }
  const thumbDescription: TagSpec = { tag: 270, type: 2, values: description("1000x700 -> 200x140 - ") };
  const thumbnail = o.jpegThumbnail
    ? await jpegStrips(dir, thumbDescription)
    : strippedRgb(200, 140, gradientPixels(200, 140), [thumbDescription]);
  const label = strippedRgb(120, 100, markerPixels(120, 100), [
    { tag: 254, type: 4, values: [1] },
    { tag: 270, type: 2, values: `Aperio Image Library v12.0.5\r\nlabel 120x100|${identity}` },
  ]);
  const macro = strippedRgb(300, 100, markerPixels(300, 100), [
    { tag: 254, type: 4, values: [9] },
    { tag: 270, type: 2, values: `Aperio Image Library v12.0.5\r\nmacro 300x100|${identity}` },
  ]);
  const out = path.join(dir, "slide.svs");
  writeTiff(out, [levels[0]!, thumbnail, ...levels.slice(1), label, macro]);
  return out;
}

/** The marker in every encoding it could survive in. */
export function markerEncodings(): Buffer[] {
  return [
    Buffer.from(MARKER, "latin1"),
    Buffer.from(MARKER.toLowerCase(), "latin1"),
    Buffer.from(MARKER, "utf16le"),
    Buffer.from(MARKER, "utf16le").swap16(),
    Buffer.from(Buffer.from(MARKER).toString("base64").slice(0, 12), "latin1"),
  ];
}

/** The encapsulated frames of one of our output files (one fragment per frame, after the BOT). */
export function encapsulatedFrames(file: string): { bot: number[]; frames: Buffer[] } {
  const bytes = readFileSync(file);
  const head = Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  let p = bytes.lastIndexOf(head);
  if (p < 0) throw new Error(`${file}: no encapsulated Pixel Data`);
  p += head.length;
  const items: Buffer[] = [];
  while (p + 8 <= bytes.length) {
    const tag = bytes.readUInt32LE(p);
    const length = bytes.readUInt32LE(p + 4);
    if (tag === 0xe0ddfffe) break;
    items.push(bytes.subarray(p + 8, p + 8 + length));
    p += 8 + length;
  }
  const [bot, ...frames] = items;
  const offsets: number[] = [];
  for (let i = 0; i + 4 <= bot!.length; i += 4) offsets.push(bot!.readUInt32LE(i));
  return { bot: offsets, frames };
}

/** One attribute value as dcmdump prints it (text between the brackets, or the raw line). */
export function dumpValue(file: string, tag: string): string | undefined {
  const out = execFileSync("dcmdump", ["+P", tag, file], { encoding: "utf8" });
  const line = out.split("\n").find((l) => l.trim() !== "");
  if (!line) return undefined;
  const m = /\[(.*)\]/.exec(line) ?? /^\([0-9a-f,]+\) [A-Z]{2} ([^#]*?)\s+#/.exec(line);
  return m?.[1]?.trim();
}

/**
 * dciodvfy's messages for a file, split into errors and warnings. PatientName is the bare participant
 * ID, as FIONA's radiology path has always written it (one patient per participant in a PACS); dciodvfy
 * calls a PN without a component separator the retired form, a warning kept out of the list.
 */
export function dciodvfy(file: string): { errors: string[]; warnings: string[] } {
  const r = spawnSync("dciodvfy", ["-new", file], { encoding: "utf8" });
  const lines = `${r.stdout}${r.stderr}`.split("\n");
  const participantName = (l: string) => /PatientName\(0010,0010\).*Retired Person Name form/.test(l);
  return {
    errors: lines.filter((l) => l.startsWith("Error")),
    warnings: lines.filter((l) => l.startsWith("Warning") && !participantName(l)),
  };
}
