/**
 * Decoding of losslessly compressed TIFF tiles and strips (none, LZW, deflate, with the horizontal
 * predictor) to native 8-bit RGB (pure). Such levels are written uncompressed (Explicit VR Little
 * Endian), which is lossless and valid, instead of being re-encoded to lossy JPEG.
 */
import { inflateSync } from "node:zlib";
import { WsiInputError } from "./errors.js";
import type { TiffImage } from "./tiff.js";

export const COMPRESSION = {
  none: 1,
  lzw: 5,
  jpeg: 7,
  deflate: 8,
  adobeDeflate: 32946,
  jp2kYcc: 33003,
  jp2k: 33004,
  jp2kRgb: 33005,
} as const;

const LOSSLESS = new Set<number>([
  COMPRESSION.none,
  COMPRESSION.lzw,
  COMPRESSION.deflate,
  COMPRESSION.adobeDeflate,
]);

/** Why an image cannot be written as native RGB, or undefined when it can. */
export function nativeUnsupported(image: TiffImage): string | undefined {
  if (!LOSSLESS.has(image.compression)) return `unsupported compression ${image.compression}`;
  if (image.samplesPerPixel !== 3 || image.bitsPerSample.some((b) => b !== 8))
    return `unsupported pixel format (${image.samplesPerPixel} samples of ${image.bitsPerSample.join("/")} bits)`;
  if (image.photometric !== 2)
    return `unsupported photometric interpretation ${image.photometric} for uncompressed data`;
  if (image.planarConfiguration !== 1) return "unsupported planar configuration 2 (separate colour planes)";
  if (image.predictor !== 1 && image.predictor !== 2) return `unsupported predictor ${image.predictor}`;
  return undefined;
}

/** TIFF LZW (MSB-first codes of 9-12 bits, code width growing one code early). */
function lzwDecode(src: Buffer, expected: number, where: string): Buffer {
  const out = Buffer.alloc(expected);
  const prefix = new Int16Array(4096);
  const suffix = new Uint8Array(4096);
  const first = new Uint8Array(4096);
  const length = new Uint16Array(4096);
  for (let i = 0; i < 256; i++) {
    prefix[i] = -1;
    suffix[i] = i;
    first[i] = i;
    length[i] = 1;
  }
  let pos = 0;
  let bit = 0;
  let width = 9;
  let next = 258;
  let prev = -1;
  const emit = (code: number) => {
    const n = length[code]!;
    // Write backwards from the end of the string, clipping what does not fit.
    let at = pos + n - 1;
    let c = code;
    while (c >= 0) {
      if (at < expected) out[at] = suffix[c]!;
      at--;
      c = prefix[c]!;
    }
    pos += n;
  };
  const totalBits = src.length * 8;
  while (bit + width <= totalBits) {
    let code = 0;
    for (let i = 0; i < width; i++, bit++) code = (code << 1) | ((src[bit >> 3]! >> (7 - (bit & 7))) & 1);
    if (code === 257) break;
    if (code === 256) {
      width = 9;
      next = 258;
      prev = -1;
      continue;
    }
    if (prev === -1) {
      if (code > 255) throw new WsiInputError(`corrupt LZW data in ${where}`);
      emit(code);
    } else {
      if (code > next) throw new WsiInputError(`corrupt LZW data in ${where}`);
      if (next < 4096) {
        prefix[next] = prev;
        suffix[next] = code === next ? first[prev]! : first[code]!;
        first[next] = first[prev]!;
        length[next] = length[prev]! + 1;
        next++;
      }
      emit(code);
    }
    prev = code;
    if (next + 1 >= 1 << width && width < 12) width++;
    if (pos >= expected) break;
  }
  if (pos < expected) throw new WsiInputError(`truncated LZW data in ${where}: ${pos} of ${expected} bytes`);
  return out;
}

/** Undo the horizontal predictor (2) for 8-bit samples, in place. */
function undoPredictor(data: Buffer, width: number, samples: number): void {
  const row = width * samples;
  for (let r = 0; r + row <= data.length; r += row)
    for (let i = r + samples; i < r + row; i++) data[i] = (data[i]! + data[i - samples]!) & 0xff;
}

/** One tile or strip as native RGB bytes of `width` x `rows` pixels. */
export function decodeNative(
  image: TiffImage,
  data: Buffer,
  width: number,
  rows: number,
  where: string,
): Buffer {
  const expected = width * rows * 3;
  let raw: Buffer;
  if (image.compression === COMPRESSION.none) raw = data;
  else if (image.compression === COMPRESSION.lzw) raw = lzwDecode(data, expected, where);
  else {
    try {
      raw = inflateSync(data);
    } catch {
      throw new WsiInputError(`corrupt deflate data in ${where}`);
    }
  }
  if (raw.length < expected)
    throw new WsiInputError(`truncated image data in ${where}: ${raw.length} of ${expected} bytes`);
  raw = raw === data ? Buffer.from(raw.subarray(0, expected)) : raw.subarray(0, expected);
  if (image.predictor === 2) undoPredictor(raw, width, 3);
  return raw;
}
