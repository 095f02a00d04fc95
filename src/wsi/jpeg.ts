/**
 * JPEG-in-TIFF tiles as DICOM frames without re-encoding (pure): merge the IFD's shared JPEGTables into
 * each abbreviated tile, and for RGB-coded tiles add an Adobe APP14 (transform 0) so decoders that only
 * see the bytes do not convert from YCbCr. Never a JFIF APP0: libjpeg-turbo lets it override APP14.
 */
import { JPEG_BASELINE, JPEG_EXTENDED } from "../dicom/transfer-syntax.js";
import { WsiInputError } from "./errors.js";

const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;

/** Adobe APP14, version 100, flags0 0x8000, flags1 0, transform 0 (RGB, no colour conversion). */
export const APP14_RGB = Buffer.from([
  0xff, 0xee, 0x00, 0x0e, 0x41, 0x64, 0x6f, 0x62, 0x65, 0x00, 0x64, 0x80, 0x00, 0x00, 0x00, 0x00,
]);

/**
 * The bytes to insert after each tile's SOI: APP14 for RGB, then the tables stream without its SOI and
 * EOI. Computed once per level; empty when there is nothing to add.
 */
export function tilePrefix(jpegTables: Buffer | undefined, rgb: boolean): Buffer {
  const parts: Buffer[] = [];
  if (rgb) parts.push(APP14_RGB);
  if (jpegTables && jpegTables.length > 4) {
    if (jpegTables[0] !== 0xff || jpegTables[1] !== SOI)
      throw new WsiInputError("malformed JPEGTables: does not start with SOI");
    const end =
      jpegTables[jpegTables.length - 2] === 0xff && jpegTables[jpegTables.length - 1] === EOI
        ? jpegTables.length - 2
        : jpegTables.length;
    parts.push(jpegTables.subarray(2, end));
  }
  return Buffer.concat(parts);
}

/** Length of a merged frame before padding: the tile plus the prefix. */
export function mergedLength(tileLength: number, prefix: Buffer): number {
  return tileLength + prefix.length;
}

/** The pieces of one merged frame (SOI, prefix, rest of the tile), for a vectored write. */
export function mergedPieces(tile: Buffer, prefix: Buffer, where: string): Buffer[] {
  if (tile.length < 4 || tile[0] !== 0xff || tile[1] !== SOI)
    throw new WsiInputError(`malformed JPEG tile: ${where} does not start with SOI`);
  return prefix.length === 0 ? [tile] : [tile.subarray(0, 2), prefix, tile.subarray(2)];
}

export interface JpegFrameInfo {
  /** SOF marker number: 0 baseline, 1 extended sequential, 2 progressive, 3 lossless … */
  process: number;
  precision: number;
  width: number;
  height: number;
  components: Array<{ id: number; h: number; v: number }>;
}

/** The SOF of a JPEG stream (a tile, merged or not); throws when there is none before SOS. */
export function readSof(stream: Buffer, where: string): JpegFrameInfo {
  let p = 2;
  while (p + 4 <= stream.length) {
    if (stream[p] !== 0xff)
      throw new WsiInputError(`malformed JPEG tile: ${where} has no marker at byte ${p}`);
    const marker = stream[p + 1]!;
    if (marker === 0xff) {
      p++;
      continue;
    }
    const length = stream.readUInt16BE(p + 2);
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      if (p + 2 + length > stream.length || length < 8) break;
      const n = stream[p + 9]!;
      const components = [];
      for (let i = 0; i < n; i++) {
        const c = p + 10 + i * 3;
        components.push({ id: stream[c]!, h: stream[c + 1]! >> 4, v: stream[c + 1]! & 15 });
      }
      return {
        process: marker - 0xc0,
        precision: stream[p + 4]!,
        height: stream.readUInt16BE(p + 5),
        width: stream.readUInt16BE(p + 7),
        components,
      };
    }
    if (marker === SOS) break;
    p += 2 + length;
  }
  throw new WsiInputError(`malformed JPEG tile: ${where} has no frame header (SOF)`);
}

/** Transfer syntax for passing a level's JPEG tiles through, or undefined when they must be re-encoded. */
export function passThroughSyntax(sof: JpegFrameInfo): string | undefined {
  if (sof.precision !== 8 || sof.components.length !== 3) return undefined;
  if (sof.process === 0) return JPEG_BASELINE;
  if (sof.process === 1) return JPEG_EXTENDED;
  return undefined;
}

/** Marker segments of a stream up to and including SOS, and where the entropy-coded data starts. */
function scanHeader(stream: Buffer, where: string): { segments: Buffer[]; sofAt: number; dataAt: number } {
  const segments: Buffer[] = [];
  let sofAt = -1;
  let p = 2;
  while (p + 4 <= stream.length) {
    if (stream[p] !== 0xff) break;
    const marker = stream[p + 1]!;
    const length = stream.readUInt16BE(p + 2);
    if (marker === 0xdd)
      throw new WsiInputError(`unsupported JPEG strip: ${where} already uses restart markers`);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc)
      sofAt = segments.reduce((n, s) => n + s.length, 0);
    segments.push(stream.subarray(p, p + 2 + length));
    p += 2 + length;
    if (marker === SOS) return { segments, sofAt, dataAt: p };
  }
  throw new WsiInputError(`malformed JPEG strip: ${where} has no scan header`);
}

/** The entropy-coded data of a stream: after its SOS header, before the final EOI. */
function entropyData(stream: Buffer, dataAt: number, where: string): Buffer {
  let end = stream.length;
  while (end > dataAt && stream[end - 1] === 0) end--; // even-length padding some writers add
  if (stream[end - 2] !== 0xff || stream[end - 1] !== EOI)
    throw new WsiInputError(`malformed JPEG strip: ${where} does not end with EOI`);
  return stream.subarray(dataAt, end - 2);
}

/**
 * One JPEG stream from a stripped JPEG image (an Aperio thumbnail), without re-encoding: the first
 * strip's header with the full height and a restart interval of one strip, then each strip's
 * entropy-coded data separated by RSTn markers (each strip starts with fresh DC predictors, as after
 * a restart). Every strip but the last must hold whole MCU rows.
 */
export function joinStrips(
  strips: Buffer[],
  prefix: Buffer,
  width: number,
  height: number,
  rowsPerStrip: number,
  where: string,
): Buffer {
  const first = Buffer.concat(mergedPieces(strips[0]!, prefix, `strip 0 of ${where}`));
  const header = scanHeader(first, `strip 0 of ${where}`);
  const sof = readSof(first, `strip 0 of ${where}`);
  const mcuWidth = 8 * Math.max(...sof.components.map((c) => c.h));
  const mcuHeight = 8 * Math.max(...sof.components.map((c) => c.v));
  const interval = Math.ceil(width / mcuWidth) * (rowsPerStrip / mcuHeight);
  if (!Number.isInteger(interval) || interval > 0xffff)
    throw new WsiInputError(
      `unsupported JPEG strips in ${where}: ${rowsPerStrip} rows per strip is not a whole number of MCU rows`,
    );
  const head = Buffer.concat(header.segments);
  head.writeUInt16BE(height, header.sofAt + 5);
  const sosLength = header.segments.at(-1)!.length;
  const dri = Buffer.from([0xff, 0xdd, 0x00, 0x04, interval >> 8, interval & 0xff]);
  const parts: Buffer[] = [
    first.subarray(0, 2),
    head.subarray(0, head.length - sosLength),
    dri,
    head.subarray(head.length - sosLength),
  ];
  parts.push(entropyData(first, header.dataAt, `strip 0 of ${where}`));
  for (let s = 1; s < strips.length; s++) {
    const strip = strips[s]!;
    parts.push(Buffer.from([0xff, 0xd0 + ((s - 1) & 7)]));
    parts.push(
      entropyData(strip, scanHeader(strip, `strip ${s} of ${where}`).dataAt, `strip ${s} of ${where}`),
    );
  }
  parts.push(Buffer.from([0xff, EOI]));
  return Buffer.concat(parts);
}
