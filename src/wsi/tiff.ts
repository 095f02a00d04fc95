/**
 * TIFF / BigTIFF structure reader: IFDs and their tag arrays only, read with positional reads, never the
 * image data. Follows the top-level IFD chain and SubIFDs (tag 330). Every offset and count is checked
 * against the file size and IFD loops are detected, so a malformed file fails with a WsiInputError
 * that says where, instead of reading garbage.
 */
import { open, type FileHandle } from "node:fs/promises";
import { WsiInputError } from "./errors.js";

export const TAG = {
  NewSubfileType: 254,
  ImageWidth: 256,
  ImageLength: 257,
  BitsPerSample: 258,
  Compression: 259,
  Photometric: 262,
  ImageDescription: 270,
  StripOffsets: 273,
  SamplesPerPixel: 277,
  RowsPerStrip: 278,
  StripByteCounts: 279,
  XResolution: 282,
  YResolution: 283,
  PlanarConfiguration: 284,
  ResolutionUnit: 296,
  Predictor: 317,
  TileWidth: 322,
  TileLength: 323,
  TileOffsets: 324,
  TileByteCounts: 325,
  SubIFDs: 330,
  JPEGTables: 347,
  IccProfile: 34675,
} as const;

/** Bytes per value of each TIFF field type (BigTIFF adds 16-18). */
const TYPE_SIZE: Record<number, number> = {
  1: 1,
  2: 1,
  3: 2,
  4: 4,
  5: 8,
  6: 1,
  7: 1,
  8: 2,
  9: 4,
  10: 8,
  11: 4,
  12: 8,
  13: 4,
  16: 8,
  17: 8,
  18: 8,
};
/** Most entries an IFD may declare and most IFDs a file may hold: far above any real slide. */
const MAX_ENTRIES = 4096;
const MAX_IFDS = 1024;
/** Largest tag value we load (descriptions, tables, ICC profiles, offset arrays of huge levels). */
const MAX_VALUE_BYTES = 64 * 1024 * 1024;

/** One image (IFD) of the file, with the tags a slide converter needs. */
export interface TiffImage {
  /** Position in reading order: top-level chain, each IFD followed by its SubIFDs. */
  index: number;
  /** "IFD 2" or "SubIFD 1 of IFD 0", for messages. */
  label: string;
  /** Index of the top-level IFD this SubIFD hangs off, or undefined for top-level IFDs. */
  parent?: number;
  /** Position in the top-level chain (undefined for SubIFDs). */
  topLevelIndex?: number;
  width: number;
  height: number;
  tiled: boolean;
  /** Tile size, or for stripped images the width and RowsPerStrip. */
  tileWidth: number;
  tileHeight: number;
  /** Tile (or strip) offsets and byte counts, in TIFF order (left to right, top to bottom). */
  offsets: number[];
  byteCounts: number[];
  compression: number;
  photometric: number;
  samplesPerPixel: number;
  bitsPerSample: number[];
  planarConfiguration: number;
  predictor: number;
  newSubfileType: number;
  description?: string;
  jpegTables?: Buffer;
  iccProfile?: Buffer;
  xResolution?: number;
  yResolution?: number;
  /** 1 none, 2 inch, 3 centimetre (TIFF default 2). */
  resolutionUnit: number;
}

interface Entry {
  tag: number;
  type: number;
  count: number;
  /** Absolute file position of the value bytes. */
  at: number;
  /** The value bytes when they fit in the entry. */
  inline?: Buffer;
}

export class TiffFile {
  private constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    readonly bigTiff: boolean,
    private readonly little: boolean,
    readonly images: TiffImage[],
  ) {}

  /** Open and parse the structure; throws WsiInputError for anything malformed. */
  static async open(file: string): Promise<TiffFile> {
    const fh = await open(file, "r");
    try {
      const size = (await fh.stat()).size;
      const parser = new StructureParser(fh, size);
      const images = await parser.parse();
      return new TiffFile(fh, size, parser.bigTiff, parser.little, images);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** Read length bytes at position (already validated against the file size by the parser). */
  async read(position: number, length: number, into?: Buffer): Promise<Buffer> {
    const buf = into && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(buf, done, length - done, position + done);
      if (bytesRead === 0)
        throw new WsiInputError(`truncated TIFF: read at byte ${position + done} hit the end of the file`);
      done += bytesRead;
    }
    return buf;
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/** Parses the header and every IFD; keeps the byte order and the offset size. */
class StructureParser {
  bigTiff = false;
  little = true;
  private readonly seen = new Set<number>();
  private readonly images: TiffImage[] = [];

  constructor(
    private readonly fh: FileHandle,
    private readonly size: number,
  ) {}

  async parse(): Promise<TiffImage[]> {
    if (this.size < 8) throw new WsiInputError(`not a TIFF file: only ${this.size} bytes`);
    const head = await this.bytes(0, Math.min(16, this.size), "the TIFF header");
    const order = head.toString("latin1", 0, 2);
    if (order !== "II" && order !== "MM")
      throw new WsiInputError("not a TIFF file: bad magic (expected II or MM)");
    this.little = order === "II";
    const version = this.u16(head, 2);
    let first: number;
    if (version === 42) first = this.u32(head, 4);
    else if (version === 43) {
      if (head.length < 16 || this.u16(head, 4) !== 8 || this.u16(head, 6) !== 0)
        throw new WsiInputError("malformed BigTIFF header (offset size must be 8)");
      this.bigTiff = true;
      first = this.u64(head, 8);
    } else throw new WsiInputError(`not a TIFF file: bad version ${version} (expected 42 or 43)`);
    if (first === 0) throw new WsiInputError("TIFF file has no image (first IFD offset is 0)");

    let offset = first;
    for (let top = 0; offset !== 0; top++) {
      const { entries, next } = await this.readIfd(offset, `IFD ${top}`);
      const image = await this.image(entries, `IFD ${top}`, undefined, top);
      const subIfd = entries.get(TAG.SubIFDs);
      if (subIfd) {
        const subs = await this.numbers(subIfd, `SubIFDs of IFD ${top}`);
        for (const [i, sub] of subs.entries()) {
          const label = `SubIFD ${i} of IFD ${top}`;
          const parsed = await this.readIfd(sub, label);
          await this.image(parsed.entries, label, image.index, undefined);
        }
      }
      offset = next;
    }
    return this.images;
  }

  private async readIfd(
    offset: number,
    label: string,
  ): Promise<{ entries: Map<number, Entry>; next: number }> {
    if (this.seen.has(offset))
      throw new WsiInputError(`malformed TIFF: ${label} at byte ${offset} loops back to an earlier IFD`);
    if (this.seen.size >= MAX_IFDS) throw new WsiInputError(`malformed TIFF: more than ${MAX_IFDS} IFDs`);
    this.seen.add(offset);
    const countSize = this.bigTiff ? 8 : 2;
    const entrySize = this.bigTiff ? 20 : 12;
    const countBuf = await this.bytes(offset, countSize, label);
    const count = this.bigTiff ? this.u64(countBuf, 0) : this.u16(countBuf, 0);
    if (count === 0 || count > MAX_ENTRIES)
      throw new WsiInputError(`malformed TIFF: ${label} at byte ${offset} declares ${count} entries`);
    const nextSize = this.bigTiff ? 8 : 4;
    const body = await this.bytes(offset + countSize, count * entrySize + nextSize, label);
    const entries = new Map<number, Entry>();
    for (let i = 0; i < count; i++) {
      const p = i * entrySize;
      const tag = this.u16(body, p);
      const type = this.u16(body, p + 2);
      const n = this.bigTiff ? this.u64(body, p + 4) : this.u32(body, p + 4);
      const typeSize = TYPE_SIZE[type];
      if (typeSize === undefined) continue; // unknown types are skipped, as TIFF 6.0 asks readers to
      const length = typeSize * n;
      const inlineSize = this.bigTiff ? 8 : 4;
      const valuePos = p + (this.bigTiff ? 12 : 8);
      if (length <= inlineSize) {
        entries.set(tag, { tag, type, count: n, at: 0, inline: body.subarray(valuePos, valuePos + length) });
      } else {
        const at = this.bigTiff ? this.u64(body, valuePos) : this.u32(body, valuePos);
        if (at + length > this.size)
          throw new WsiInputError(
            `truncated TIFF: tag ${tag} of ${label} ends at byte ${at + length} beyond the file size ${this.size}`,
          );
        entries.set(tag, { tag, type, count: n, at });
      }
    }
    const nextPos = count * entrySize;
    const next = this.bigTiff ? this.u64(body, nextPos) : this.u32(body, nextPos);
    return { entries, next };
  }

  private async image(
    entries: Map<number, Entry>,
    label: string,
    parent: number | undefined,
    top: number | undefined,
  ): Promise<TiffImage> {
    const one = async (tag: number, fallback?: number): Promise<number> => {
      const e = entries.get(tag);
      if (!e) {
        if (fallback === undefined) throw new WsiInputError(`malformed TIFF: ${label} has no tag ${tag}`);
        return fallback;
      }
      const v = await this.numbers(e, `tag ${tag} of ${label}`);
      if (v[0] === undefined) throw new WsiInputError(`malformed TIFF: tag ${tag} of ${label} is empty`);
      return v[0];
    };
    const width = await one(TAG.ImageWidth);
    const height = await one(TAG.ImageLength);
    if (width === 0 || height === 0)
      throw new WsiInputError(`malformed TIFF: ${label} is ${width}x${height}`);
    const tiled = entries.has(TAG.TileOffsets);
    const tileWidth = tiled ? await one(TAG.TileWidth) : width;
    const tileHeight = tiled
      ? await one(TAG.TileLength)
      : Math.min(await one(TAG.RowsPerStrip, height), height);
    if (tileWidth === 0 || tileHeight === 0)
      throw new WsiInputError(`malformed TIFF: ${label} has a zero tile size`);
    const offsetsEntry = entries.get(tiled ? TAG.TileOffsets : TAG.StripOffsets);
    const countsEntry = entries.get(tiled ? TAG.TileByteCounts : TAG.StripByteCounts);
    const what = tiled ? "tile" : "strip";
    if (!offsetsEntry || !countsEntry)
      throw new WsiInputError(`malformed TIFF: ${label} has no ${what} offsets or byte counts`);
    const planar = await one(TAG.PlanarConfiguration, 1);
    const spp = await one(TAG.SamplesPerPixel, 1);
    const expected = Math.ceil(width / tileWidth) * Math.ceil(height / tileHeight) * (planar === 2 ? spp : 1);
    const offsets = await this.numbers(offsetsEntry, `${what} offsets of ${label}`);
    const byteCounts = await this.numbers(countsEntry, `${what} byte counts of ${label}`);
    if (offsets.length !== expected || byteCounts.length !== expected)
      throw new WsiInputError(
        `malformed TIFF: ${label} has ${offsets.length} ${what} offsets and ${byteCounts.length} byte counts, expected ${expected}`,
      );
    for (let i = 0; i < expected; i++) {
      const end = offsets[i]! + byteCounts[i]!;
      if (end > this.size)
        throw new WsiInputError(
          `truncated TIFF: ${what} ${i} of ${label} ends at byte ${end} beyond the file size ${this.size}`,
        );
    }
    const bytesOf = async (tag: number): Promise<Buffer | undefined> => {
      const e = entries.get(tag);
      return e ? this.raw(e, `tag ${tag} of ${label}`) : undefined;
    };
    const rational = async (tag: number): Promise<number | undefined> => {
      const e = entries.get(tag);
      if (!e || (e.type !== 5 && e.type !== 11 && e.type !== 12)) return undefined;
      const b = await this.raw(e, `tag ${tag} of ${label}`);
      if (e.type === 11) return this.little ? b.readFloatLE(0) : b.readFloatBE(0);
      if (e.type === 12) return this.little ? b.readDoubleLE(0) : b.readDoubleBE(0);
      const den = this.u32(b, 4);
      return den === 0 ? undefined : this.u32(b, 0) / den;
    };
    const description = await bytesOf(TAG.ImageDescription);
    const bps = entries.get(TAG.BitsPerSample);
    const image: TiffImage = {
      index: this.images.length,
      label,
      ...(parent !== undefined ? { parent } : {}),
      ...(top !== undefined ? { topLevelIndex: top } : {}),
      width,
      height,
      tiled,
      tileWidth,
      tileHeight,
      offsets,
      byteCounts,
      compression: await one(TAG.Compression, 1),
      photometric: await one(TAG.Photometric, 2),
      samplesPerPixel: spp,
      bitsPerSample: bps ? await this.numbers(bps, `BitsPerSample of ${label}`) : [1],
      planarConfiguration: planar,
      predictor: await one(TAG.Predictor, 1),
      newSubfileType: await one(TAG.NewSubfileType, 0),
      resolutionUnit: await one(TAG.ResolutionUnit, 2),
    };
    if (description) image.description = description.toString("latin1").replace(/\0+$/, "");
    const tables = await bytesOf(TAG.JPEGTables);
    if (tables && tables.length > 4) image.jpegTables = tables;
    const icc = await bytesOf(TAG.IccProfile);
    if (icc && icc.length >= 128) image.iccProfile = icc;
    const xr = await rational(TAG.XResolution);
    const yr = await rational(TAG.YResolution);
    if (xr !== undefined && xr > 0) image.xResolution = xr;
    if (yr !== undefined && yr > 0) image.yResolution = yr;
    this.images.push(image);
    return image;
  }

  /** The value bytes of an entry. */
  private async raw(e: Entry, what: string): Promise<Buffer> {
    if (e.inline) return e.inline;
    const length = TYPE_SIZE[e.type]! * e.count;
    if (length > MAX_VALUE_BYTES) throw new WsiInputError(`malformed TIFF: ${what} is ${length} bytes long`);
    return this.bytes(e.at, length, what);
  }

  /** An integer-typed entry as numbers (BYTE, SHORT, LONG, LONG8, IFD, IFD8). */
  private async numbers(e: Entry, what: string): Promise<number[]> {
    const b = await this.raw(e, what);
    const out = new Array<number>(e.count);
    for (let i = 0; i < e.count; i++) {
      switch (e.type) {
        case 1:
        case 7:
          out[i] = b[i]!;
          break;
        case 3:
          out[i] = this.u16(b, i * 2);
          break;
        case 4:
        case 13:
          out[i] = this.u32(b, i * 4);
          break;
        case 16:
        case 18:
          out[i] = this.u64(b, i * 8);
          break;
        default:
          throw new WsiInputError(`malformed TIFF: ${what} has non-integer type ${e.type}`);
      }
    }
    return out;
  }

  private async bytes(position: number, length: number, what: string): Promise<Buffer> {
    if (position + length > this.size)
      throw new WsiInputError(
        `truncated TIFF: ${what} at byte ${position} ends at byte ${position + length} beyond the file size ${this.size}`,
      );
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await this.fh.read(buf, 0, length, position);
    if (bytesRead !== length)
      throw new WsiInputError(`truncated TIFF: ${what} at byte ${position} is cut short`);
    return buf;
  }

  private u16(b: Buffer, at: number): number {
    return this.little ? b.readUInt16LE(at) : b.readUInt16BE(at);
  }
  private u32(b: Buffer, at: number): number {
    return this.little ? b.readUInt32LE(at) : b.readUInt32BE(at);
  }
  private u64(b: Buffer, at: number): number {
    const v = this.little ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at);
    if (v > BigInt(Number.MAX_SAFE_INTEGER))
      throw new WsiInputError(`malformed TIFF: 64-bit value ${v} at byte ${at} is too large`);
    return Number(v);
  }
}
