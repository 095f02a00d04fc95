/**
 * The conversion itself (runs inside the converter worker thread, see convert.ts): TIFF structure →
 * layout → one VL Whole Slide Microscopy instance per pyramid level (and the thumbnail when asked).
 * JPEG tiles are passed through with the tables merged; losslessly compressed levels are decoded and
 * written native. Identity comes only from the SlideDataset.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { EXPLICIT_VR_LITTLE_ENDIAN } from "../dicom/transfer-syntax.js";
import { isValidUid } from "../dicom/uid.js";
import type { ConvertOptions, ConvertResult, ConvertedInstance, SlideDataset } from "./convert.js";
import { blankJpeg } from "./blank-jpeg.js";
import { COMPRESSION, decodeNative, nativeUnsupported } from "./decode.js";
import { writeInstance, type FrameSource } from "./dicom-writer.js";
import { WsiInputError } from "./errors.js";
import { j2kPassThrough, readJ2k } from "./jpeg2000.js";
import { joinStrips, mergedLength, mergedPieces, passThroughSyntax, readSof, tilePrefix } from "./jpeg.js";
import { aperioOptics, baseSpacingMm, classifyImages, levelSpacingMm } from "./levels.js";
import { SRGB_ICC } from "./srgb-icc.js";
import { TiffFile, type TiffImage } from "./tiff.js";
import { derivedUid, levelDataset, type LevelAttributes, type SlideCommon } from "./wsm-dataset.js";

const JPEG_2000 = new Set<number>([COMPRESSION.jp2kYcc, COMPRESSION.jp2k, COMPRESSION.jp2kRgb]);

interface Encoding {
  frames: FrameSource;
  transferSyntaxUid: string;
  photometric: LevelAttributes["photometric"];
  reencoded: boolean;
  lossy?: LevelAttributes["lossy"];
  rows: number;
  columns: number;
}

/** JPEG tiles (or a single JPEG strip) passed through with the level's tables merged in. */
async function jpegEncoding(
  tiff: TiffFile,
  image: TiffImage,
  rows: number,
  columns: number,
): Promise<Encoding> {
  const { offsets, byteCounts } = image;
  if (image.photometric !== 2 && image.photometric !== 6)
    throw new WsiInputError(
      `unsupported photometric interpretation ${image.photometric} for JPEG in ${image.label}`,
    );
  const rgb = image.photometric === 2;
  const prefix = tilePrefix(image.jpegTables, rgb);
  // Zero-length tiles (an Aperio encoder defect) become white tiles; the first real one gives the format.
  const isEmpty = (i: number) => byteCounts[i]! === 0;
  const sample = byteCounts.findIndex((_, i) => !isEmpty(i));
  if (sample < 0) throw new WsiInputError(`unsupported TIFF: every tile of ${image.label} is empty`);
  const where = `tile ${sample} of ${image.label}`;
  const first = await tiff.read(offsets[sample]!, byteCounts[sample]!);
  const sof = readSof(Buffer.concat(mergedPieces(first, prefix, where)), where);
  const syntax = passThroughSyntax(sof);
  if (!syntax)
    throw new WsiInputError(
      `unsupported JPEG in ${image.label}: process ${sof.process}, ${sof.precision}-bit, ${sof.components.length} components`,
    );
  if (sof.width !== columns || sof.height !== rows)
    throw new WsiInputError(
      `malformed TIFF: JPEG tiles of ${image.label} are ${sof.width}x${sof.height}, the tags say ${columns}x${rows}`,
    );
  const blank = blankJpeg(sof, rgb);
  const length = (i: number) => (isEmpty(i) ? blank.length : mergedLength(byteCounts[i]!, prefix));
  let total = 0;
  for (let i = 0; i < offsets.length; i++) total += length(i);
  return {
    transferSyntaxUid: syntax,
    photometric: rgb ? "RGB" : "YBR_FULL_422",
    reencoded: false,
    lossy: { ratio: (image.width * image.height * 3) / total, method: "ISO_10918_1" },
    rows,
    columns,
    frames: {
      count: offsets.length,
      encapsulated: true,
      length,
      read: async (i) =>
        isEmpty(i)
          ? [blank]
          : mergedPieces(await tiff.read(offsets[i]!, byteCounts[i]!), prefix, `tile ${i} of ${image.label}`),
    },
  };
}

/** JPEG 2000 tiles that are raw codestreams, one frame each, unchanged. */
async function j2kEncoding(tiff: TiffFile, image: TiffImage): Promise<Encoding> {
  const { offsets, byteCounts } = image;
  const empty = byteCounts.indexOf(0);
  if (empty >= 0)
    throw new WsiInputError(`unsupported TIFF: JPEG 2000 tile ${empty} of ${image.label} is empty`);
  const where = `tile 0 of ${image.label}`;
  const info = readJ2k(await tiff.read(offsets[0]!, byteCounts[0]!), where);
  const pass = j2kPassThrough(info, image.photometric);
  if ("unsupported" in pass)
    throw new WsiInputError(
      `unsupported compression ${image.compression} (JPEG 2000, ${pass.unsupported}) in ${image.label}`,
    );
  if (info.width !== image.tileWidth || info.height !== image.tileHeight)
    throw new WsiInputError(
      `malformed TIFF: JPEG 2000 tiles of ${image.label} are ${info.width}x${info.height}, the tags say ${image.tileWidth}x${image.tileHeight}`,
    );
  const total = byteCounts.reduce((a, b) => a + b, 0);
  return {
    ...pass,
    reencoded: false,
    ...(info.reversible
      ? {}
      : { lossy: { ratio: (image.width * image.height * 3) / total, method: "ISO_15444_1" } }),
    rows: image.tileHeight,
    columns: image.tileWidth,
    frames: {
      count: offsets.length,
      encapsulated: true,
      length: (i) => byteCounts[i]!,
      read: async (i) => [await tiff.read(offsets[i]!, byteCounts[i]!)],
    },
  };
}

/** A JPEG image in several strips (Aperio thumbnails) as one frame: strips joined with restart markers. */
async function joinedStripsEncoding(tiff: TiffFile, image: TiffImage): Promise<Encoding> {
  if (image.photometric !== 2 && image.photometric !== 6)
    throw new WsiInputError(
      `unsupported photometric interpretation ${image.photometric} for JPEG in ${image.label}`,
    );
  const rgb = image.photometric === 2;
  const strips: Buffer[] = [];
  for (let s = 0; s < image.offsets.length; s++)
    strips.push(await tiff.read(image.offsets[s]!, image.byteCounts[s]!));
  const frame = joinStrips(
    strips,
    tilePrefix(image.jpegTables, rgb),
    image.width,
    image.height,
    image.tileHeight,
    image.label,
  );
  const syntax = passThroughSyntax(readSof(frame, image.label));
  if (!syntax) throw new WsiInputError(`unsupported JPEG in ${image.label}`);
  return {
    transferSyntaxUid: syntax,
    photometric: rgb ? "RGB" : "YBR_FULL_422",
    reencoded: false,
    lossy: { ratio: (image.width * image.height * 3) / frame.length, method: "ISO_10918_1" },
    rows: image.height,
    columns: image.width,
    frames: {
      count: 1,
      encapsulated: true,
      length: () => frame.length,
      read: () => Promise.resolve([frame]),
    },
  };
}

/** Lossless tiles decoded to native RGB, one frame per tile; a stripped image becomes one frame. */
function nativeEncoding(tiff: TiffFile, image: TiffImage): Encoding {
  const why = nativeUnsupported(image);
  if (why) throw new WsiInputError(`${why} in ${image.label}`);
  const { offsets, byteCounts } = image;
  const base = { transferSyntaxUid: EXPLICIT_VR_LITTLE_ENDIAN, photometric: "RGB" as const, reencoded: true };
  if (image.tiled) {
    const frameBytes = image.tileWidth * image.tileHeight * 3;
    return {
      ...base,
      rows: image.tileHeight,
      columns: image.tileWidth,
      frames: {
        count: offsets.length,
        encapsulated: false,
        length: () => frameBytes,
        read: async (i) => [
          decodeNative(
            image,
            await tiff.read(offsets[i]!, byteCounts[i]!),
            image.tileWidth,
            image.tileHeight,
            `tile ${i} of ${image.label}`,
          ),
        ],
      },
    };
  }
  return {
    ...base,
    rows: image.height,
    columns: image.width,
    frames: {
      count: 1,
      encapsulated: false,
      length: () => image.width * image.height * 3,
      read: async () => {
        const strips: Buffer[] = [];
        for (let s = 0; s < offsets.length; s++) {
          const rows = Math.min(image.tileHeight, image.height - s * image.tileHeight);
          strips.push(
            decodeNative(
              image,
              await tiff.read(offsets[s]!, byteCounts[s]!),
              image.width,
              rows,
              `strip ${s} of ${image.label}`,
            ),
          );
        }
        return strips;
      },
    },
  };
}

async function encodingFor(tiff: TiffFile, image: TiffImage): Promise<Encoding> {
  if (image.compression === COMPRESSION.jpeg) {
    if (image.tiled) return jpegEncoding(tiff, image, image.tileHeight, image.tileWidth);
    return image.offsets.length === 1
      ? jpegEncoding(tiff, image, image.height, image.width)
      : joinedStripsEncoding(tiff, image);
  }
  if (JPEG_2000.has(image.compression)) {
    if (!image.tiled) throw new WsiInputError(`unsupported TIFF: ${image.label} is JPEG 2000 in strips`);
    return j2kEncoding(tiff, image);
  }
  return nativeEncoding(tiff, image);
}

function checkDataset(d: SlideDataset): void {
  const uids: Array<[string, string | undefined]> = [
    ["studyInstanceUid", d.studyInstanceUid],
    ["seriesInstanceUid", d.seriesInstanceUid],
    ["specimenUid", d.specimenUid],
    ["frameOfReferenceUid", d.frameOfReferenceUid],
  ];
  for (const [name, uid] of uids)
    if (uid !== undefined && !isValidUid(uid)) throw new TypeError(`SlideDataset.${name} is not a valid UID`);
}

/** Convert in the calling thread (the worker calls this; tests of the core may too). */
export async function convertInThisThread(
  input: string,
  outDir: string,
  dataset: SlideDataset,
  opts: Omit<ConvertOptions, "signal"> & { signal?: AbortSignal } = {},
): Promise<ConvertResult> {
  checkDataset(dataset);
  const tiff = await TiffFile.open(input);
  try {
    const layout = classifyImages(tiff.images);
    const level0 = layout.levels[0];
    if (!level0)
      throw new WsiInputError("not a slide: the TIFF has no tiled image to use as a pyramid level");
    const dropped = [...layout.dropped];
    const targets: Array<{ image: TiffImage; kind: "VOLUME" | "THUMBNAIL"; encoding: Encoding }> = [];
    // Plan every level before writing anything, so unsupported input fails before any output exists.
    for (const image of layout.levels)
      targets.push({ image, kind: "VOLUME", encoding: await encodingFor(tiff, image) });
    if (layout.thumbnail) {
      const thumb = layout.thumbnail;
      const encoding = opts.keepThumbnail ? await encodingFor(tiff, thumb).catch(() => undefined) : undefined;
      if (encoding) targets.push({ image: thumb, kind: "THUMBNAIL", encoding });
      else dropped.push({ ifd: thumb.index, kind: "thumbnail" });
      dropped.sort((a, b) => a.ifd - b.ifd);
    }
    const base = baseSpacingMm(level0);
    const { objectivePower } = aperioOptics(level0.description);
    const series = dataset.seriesInstanceUid;
    const common: SlideCommon = {
      dataset,
      frameOfReferenceUid: dataset.frameOfReferenceUid ?? derivedUid(series, "frame-of-reference"),
      pyramidUid: derivedUid(series, "pyramid"),
      dimensionOrganizationUid: derivedUid(series, "dimension-organization"),
      iccProfile: level0.iccProfile ?? SRGB_ICC,
      imagedWidthMm: level0.width * base.columns,
      imagedHeightMm: level0.height * base.rows,
      ...(objectivePower !== undefined ? { objectivePower } : {}),
    };
    await mkdir(outDir, { recursive: true });
    const instances: ConvertedInstance[] = [];
    const volumes = targets.filter((t) => t.kind === "VOLUME").length;
    for (const [n, { image, kind, encoding }] of targets.entries()) {
      const isThumb = kind === "THUMBNAIL";
      const sopInstanceUid = isThumb ? derivedUid(series, "thumbnail") : derivedUid(series, "level", n);
      const attrs: LevelAttributes = {
        sopInstanceUid,
        instanceNumber: n + 1,
        imageType: isThumb
          ? ["DERIVED", "PRIMARY", "THUMBNAIL", "RESAMPLED"]
          : n === 0
            ? ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
            : ["DERIVED", "PRIMARY", "VOLUME", "RESAMPLED"],
        totalColumns: image.width,
        totalRows: image.height,
        columns: encoding.columns,
        rows: encoding.rows,
        frames: encoding.frames.count,
        photometric: encoding.photometric,
        spacing: levelSpacingMm(level0, image),
        ...(encoding.lossy ? { lossy: encoding.lossy } : {}),
      };
      const file = path.join(outDir, isThumb ? "thumbnail.dcm" : `level-${n}.dcm`);
      const framesTotal = encoding.frames.count;
      const progress = (framesDone: number) => {
        if (framesDone % 256 === 0 || framesDone === framesTotal)
          opts.onProgress?.({ level: n, levels: targets.length, framesDone, framesTotal });
      };
      await writeInstance(
        file,
        { sopInstanceUid, transferSyntaxUid: encoding.transferSyntaxUid },
        levelDataset(common, attrs),
        encoding.frames,
        progress,
        opts.signal,
      );
      instances.push({
        path: file,
        sopInstanceUid,
        level: isThumb ? volumes : n,
        imageType: kind,
        totalColumns: image.width,
        totalRows: image.height,
        tileWidth: encoding.columns,
        tileHeight: encoding.rows,
        frames: framesTotal,
        transferSyntaxUid: encoding.transferSyntaxUid,
        reencoded: encoding.reencoded,
      });
    }
    return { instances, dropped };
  } finally {
    await tiff.close();
  }
}
