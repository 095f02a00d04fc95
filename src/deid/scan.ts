/**
 * The top-level elements the engine needs before the walk (character set, SOP class, the patient's
 * identifiers for Clean Descriptors, pixel geometry): located once, read on demand.
 */
import {
  Header,
  PIXEL_DATA,
  UNDEFINED_LENGTH,
  innerSyntax,
  readHeader,
  skipUndefined,
  type Syntax,
} from "./bytes.js";
import { normalizeUid as trimText } from "./uid.js";

const SCAN_TAGS = [
  0x00080005, 0x00080016, 0x00080018, 0x00080050, 0x00080070, 0x00081090, 0x00100010, 0x00100020, 0x00100030,
  0x00101000, 0x00101001, 0x0020000d, 0x0020000e, 0x00280002, 0x00280006, 0x00280008, 0x00280010, 0x00280011,
  0x00280100, 0x00280301, 0x7fe00010,
] as const;
const SCAN_SLOT = new Map<number, number>(SCAN_TAGS.map((t, i) => [t, i]));

export class TopLevelScan {
  /** Offsets/lengths per slot (2 per slot, -1 when absent, length -2 for an undefined length). */
  private readonly scan = new Int32Array(SCAN_TAGS.length * 2).fill(-1);

  constructor(
    private readonly buf: Buffer,
    private readonly syn: Syntax,
  ) {
    const h = new Header();
    const end = buf.length;
    let pos = 0;
    while (pos < end) {
      readHeader(buf, pos, end, syn, h);
      const slot = SCAN_SLOT.get(h.tag);
      if (slot !== undefined) {
        this.scan[slot * 2] = h.valueOffset;
        this.scan[slot * 2 + 1] = h.length === UNDEFINED_LENGTH ? -2 : h.length;
      }
      if (h.length === UNDEFINED_LENGTH)
        pos = skipUndefined(buf, h.valueOffset, end, innerSyntax(h.vr, syn), h);
      else pos = h.valueOffset + h.length;
    }
  }

  /** Trimmed text of a scanned top-level element, undefined when absent. */
  text(tag: number): string | undefined {
    const raw = this.raw(tag);
    return raw === undefined ? undefined : trimText(raw);
  }

  /** Raw (untrimmed) text of a scanned top-level element. */
  raw(tag: number): string | undefined {
    const [off, len] = this.located(tag);
    if (off < 0 || len < 0) return undefined;
    return this.buf.toString("latin1", off, off + len);
  }

  /** US value of a scanned top-level element. */
  us(tag: number): number | undefined {
    const [off, len] = this.located(tag);
    if (off < 0 || len < 2) return undefined;
    return this.syn.little ? this.buf.readUInt16LE(off) : this.buf.readUInt16BE(off);
  }

  /** Pixel data: [offset, length], length -2 when encapsulated (undefined length). */
  pixelData(): [number, number] | undefined {
    const located = this.located(PIXEL_DATA);
    return located[0] < 0 ? undefined : located;
  }

  private located(tag: number): [offset: number, length: number] {
    const slot = SCAN_SLOT.get(tag)!;
    return [this.scan[slot * 2]!, this.scan[slot * 2 + 1]!];
  }
}
