/**
 * A minimal classic-TIFF writer for test fixtures that vips cannot make: an Aperio-like SVS with a
 * thumbnail, a label and a macro, each image's data given as ready-made tiles or strips.
 */
import { writeFileSync } from "node:fs";

export interface TagSpec {
  tag: number;
  /** 2 ASCII, 3 SHORT, 4 LONG, 5 RATIONAL (values as [num, den, …]), 7 UNDEFINED. */
  type: 2 | 3 | 4 | 5 | 7;
  values: number[] | string | Buffer;
}

export interface ImageSpec {
  tags: TagSpec[];
  /** Tiles (when tiled is true) or strips, in TIFF order. */
  chunks: Buffer[];
  tiled: boolean;
}

const SIZE = { 2: 1, 3: 2, 4: 4, 5: 8, 7: 1 } as const;

function valueBytes(t: TagSpec): Buffer {
  if (Buffer.isBuffer(t.values)) return t.values;
  if (typeof t.values === "string") return Buffer.from(`${t.values}\0`, "latin1");
  const size = t.type === 5 ? 4 : SIZE[t.type];
  const b = Buffer.alloc(t.values.length * size);
  t.values.forEach((v, i) =>
    size === 2 ? b.writeUInt16LE(v, i * 2) : size === 4 ? b.writeUInt32LE(v, i * 4) : b.writeUInt8(v, i),
  );
  return b;
}

function count(t: TagSpec): number {
  if (Buffer.isBuffer(t.values)) return t.values.length;
  if (typeof t.values === "string") return t.values.length + 1;
  return t.type === 5 ? t.values.length / 2 : t.values.length;
}

/** Write the images as consecutive top-level IFDs (little endian, classic TIFF). */
export function writeTiff(file: string, images: ImageSpec[]): void {
  const parts: Buffer[] = [Buffer.alloc(8)];
  let size = 8;
  const append = (b: Buffer): number => {
    if (size % 2) {
      parts.push(Buffer.alloc(1));
      size++;
    }
    const at = size;
    parts.push(b);
    size += b.length;
    return at;
  };
  const ifdOffsets: number[] = [];
  const nextPointers: number[] = [];
  for (const image of images) {
    const offsets = image.chunks.map((c) => append(c));
    const tags: TagSpec[] = [
      ...image.tags,
      { tag: image.tiled ? 324 : 273, type: 4 as const, values: offsets },
      { tag: image.tiled ? 325 : 279, type: 4 as const, values: image.chunks.map((c) => c.length) },
    ].sort((a, b) => a.tag - b.tag);
    const values = tags.map((t) => {
      const v = valueBytes(t);
      return v.length > 4 ? append(v) : v;
    });
    const ifd = Buffer.alloc(2 + tags.length * 12 + 4);
    ifd.writeUInt16LE(tags.length, 0);
    tags.forEach((t, i) => {
      const p = 2 + i * 12;
      ifd.writeUInt16LE(t.tag, p);
      ifd.writeUInt16LE(t.type, p + 2);
      ifd.writeUInt32LE(count(t), p + 4);
      const v = values[i]!;
      if (typeof v === "number") ifd.writeUInt32LE(v, p + 8);
      else v.copy(ifd, p + 8);
    });
    const at = append(ifd);
    ifdOffsets.push(at);
    nextPointers.push(at + 2 + tags.length * 12);
  }
  const out = Buffer.concat(parts);
  out.write("II", 0, "latin1");
  out.writeUInt16LE(42, 2);
  out.writeUInt32LE(ifdOffsets[0]!, 4);
  for (let i = 0; i + 1 < ifdOffsets.length; i++) out.writeUInt32LE(ifdOffsets[i + 1]!, nextPointers[i]!);
  writeFileSync(file, out);
}
