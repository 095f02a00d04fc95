/**
 * A white baseline JPEG tile to stand in for a zero-length TIFF tile (a known Aperio encoder defect):
 * TILED_FULL cannot mark a frame absent, so every frame must decode. Same size, components and
 * sampling as the level's real tiles; its own tables (quantiser 1, two tiny Huffman tables), so it
 * never depends on the level's JPEGTables. Pure.
 */
import { APP14_RGB, type JpegFrameInfo } from "./jpeg.js";

/** DC of a white block with a quantiser of 1: 8 x (255 - 128). Category 10 (10 value bits). */
const WHITE_DC = 1016;

class BitWriter {
  private readonly bytes: number[] = [];
  private acc = 0;
  private n = 0;
  put(bits: number, count: number): void {
    for (let i = count - 1; i >= 0; i--) {
      this.acc = (this.acc << 1) | ((bits >> i) & 1);
      if (++this.n === 8) this.flushByte();
    }
  }
  private flushByte(): void {
    this.bytes.push(this.acc);
    if (this.acc === 0xff) this.bytes.push(0); // byte stuffing
    this.acc = 0;
    this.n = 0;
  }
  finish(): Buffer {
    if (this.n > 0) this.put(0x7f, 8 - this.n); // pad with 1-bits
    return Buffer.from(this.bytes);
  }
}

const segment = (marker: number, body: number[]) => [
  0xff,
  marker,
  (body.length + 2) >> 8,
  (body.length + 2) & 0xff,
  ...body,
];

/** A complete JPEG of sof.width x sof.height, white (RGB) or white with neutral chroma (YCbCr). */
export function blankJpeg(sof: JpegFrameInfo, rgb: boolean): Buffer {
  const maxH = Math.max(...sof.components.map((c) => c.h));
  const maxV = Math.max(...sof.components.map((c) => c.v));
  const mcus = Math.ceil(sof.width / (8 * maxH)) * Math.ceil(sof.height / (8 * maxV));
  const bits = new BitWriter();
  // DC table: category 0 = "0", category 10 = "10"; AC table: EOB = "0".
  for (let m = 0; m < mcus; m++)
    sof.components.forEach((c, ci) => {
      for (let b = 0; b < c.h * c.v; b++) {
        const first = m === 0 && b === 0 && (rgb || ci === 0);
        if (first) bits.put((0b10 << 10) | WHITE_DC, 12);
        else bits.put(0, 1);
        bits.put(0, 1);
      }
    });
  const n = sof.components.length;
  return Buffer.from([
    0xff,
    0xd8,
    ...(rgb ? APP14_RGB : []),
    ...segment(0xdb, [0, ...new Array<number>(64).fill(1)]),
    ...segment(0xc0, [
      8,
      sof.height >> 8,
      sof.height & 0xff,
      sof.width >> 8,
      sof.width & 0xff,
      n,
      ...sof.components.flatMap((c) => [c.id, (c.h << 4) | c.v, 0]),
    ]),
    ...segment(0xc4, [0x00, 1, 1, ...new Array<number>(14).fill(0), 0x00, 0x0a]),
    ...segment(0xc4, [0x10, 1, ...new Array<number>(15).fill(0), 0x00]),
    ...segment(0xda, [n, ...sof.components.flatMap((c) => [c.id, 0x00]), 0, 63, 0]),
    ...bits.finish(),
    0xff,
    0xd9,
  ]);
}
