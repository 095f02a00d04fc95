/**
 * Byte-level DICOM element reading and writing for the de-identification engine.
 * Values are never decoded here; callers slice the source Buffer.
 */
import { DeidParseError } from "./errors.js";

/** Encoding of one data set (the Part-10 meta group is always explicit VR little endian). */
export interface Syntax {
  readonly explicit: boolean;
  readonly little: boolean;
}

export const EXPLICIT_LE: Syntax = Object.freeze({ explicit: true, little: true });
export const IMPLICIT_LE: Syntax = Object.freeze({ explicit: false, little: true });
export const EXPLICIT_BE: Syntax = Object.freeze({ explicit: true, little: false });
const IMPLICIT_BE: Syntax = Object.freeze({ explicit: false, little: false });

export const UNDEFINED_LENGTH = 0xffffffff;

export const ITEM = 0xfffee000;
export const ITEM_DELIMITER = 0xfffee00d;
export const SEQUENCE_DELIMITER = 0xfffee0dd;
export const PIXEL_DATA = 0x7fe00010;

/** Two VR characters as one number: "SQ" -> 0x5351. */
export function vrCode(vr: string): number {
  return ((vr.charCodeAt(0) & 0xff) << 8) | (vr.charCodeAt(1) & 0xff);
}

function vrName(code: number): string {
  return String.fromCharCode(code >> 8, code & 0xff);
}

export const VR = {
  AE: vrCode("AE"),
  AS: vrCode("AS"),
  AT: vrCode("AT"),
  CS: vrCode("CS"),
  DA: vrCode("DA"),
  DS: vrCode("DS"),
  DT: vrCode("DT"),
  FD: vrCode("FD"),
  FL: vrCode("FL"),
  IS: vrCode("IS"),
  LO: vrCode("LO"),
  LT: vrCode("LT"),
  OB: vrCode("OB"),
  OD: vrCode("OD"),
  OF: vrCode("OF"),
  OL: vrCode("OL"),
  OV: vrCode("OV"),
  OW: vrCode("OW"),
  PN: vrCode("PN"),
  SH: vrCode("SH"),
  SL: vrCode("SL"),
  SQ: vrCode("SQ"),
  SS: vrCode("SS"),
  ST: vrCode("ST"),
  SV: vrCode("SV"),
  TM: vrCode("TM"),
  UC: vrCode("UC"),
  UI: vrCode("UI"),
  UL: vrCode("UL"),
  UN: vrCode("UN"),
  UR: vrCode("UR"),
  US: vrCode("US"),
  UT: vrCode("UT"),
  UV: vrCode("UV"),
} as const;

/** VRs with a 2-byte reserved field and a 4-byte length in explicit VR. */
const LONG_VRS = new Set(
  [VR.OB, VR.OD, VR.OF, VR.OL, VR.OV, VR.OW, VR.SQ, VR.UC, VR.UN, VR.UR, VR.UT, VR.SV, VR.UV].map(Number),
);

/** Maximum value length per VR (PS3.5 6.2), used to truncate written values. */
const MAX_LENGTH = new Map<number, number>([
  [VR.AE, 16],
  [VR.AS, 4],
  [VR.CS, 16],
  [VR.DA, 8],
  [VR.DS, 16],
  [VR.DT, 26],
  [VR.IS, 12],
  [VR.LO, 64],
  [VR.LT, 10240],
  [VR.PN, 64],
  [VR.SH, 16],
  [VR.ST, 1024],
  [VR.TM, 14],
  [VR.UC, 65534],
  [VR.UI, 64],
  [VR.UT, 65534],
]);

export function maxLength(code: number): number {
  return MAX_LENGTH.get(code) ?? 65534;
}

/** One element header, filled in place by {@link readHeader} (reused, no allocation per element). */
export class Header {
  tag = 0;
  /** VR code from the file (explicit) or 0 (implicit, or item/delimiter tags). */
  vr = 0;
  headerLength = 0;
  length = 0;
  valueOffset = 0;
}

/** Read the element (or item/delimiter) header at `pos`. Throws DeidParseError when truncated or malformed. */
export function readHeader(buf: Buffer, pos: number, end: number, syn: Syntax, h: Header): void {
  if (pos + 8 > end) throw new DeidParseError(`truncated element header at byte ${pos}`);
  let group: number;
  let element: number;
  if (syn.little) {
    group = buf[pos]! | (buf[pos + 1]! << 8);
    element = buf[pos + 2]! | (buf[pos + 3]! << 8);
  } else {
    group = (buf[pos]! << 8) | buf[pos + 1]!;
    element = (buf[pos + 2]! << 8) | buf[pos + 3]!;
  }
  h.tag = ((group << 16) | element) >>> 0;
  if (!syn.explicit || group === 0xfffe) {
    h.vr = 0;
    h.headerLength = 8;
    h.length = syn.little ? buf.readUInt32LE(pos + 4) : buf.readUInt32BE(pos + 4);
  } else {
    const c0 = buf[pos + 4]!;
    const c1 = buf[pos + 5]!;
    if (c0 < 0x41 || c0 > 0x5a || c1 < 0x41 || c1 > 0x5a) {
      throw new DeidParseError(`invalid VR at byte ${pos + 4}`);
    }
    const code = (c0 << 8) | c1;
    h.vr = code;
    if (LONG_VRS.has(code)) {
      if (pos + 12 > end) throw new DeidParseError(`truncated element header at byte ${pos}`);
      h.headerLength = 12;
      h.length = syn.little ? buf.readUInt32LE(pos + 8) : buf.readUInt32BE(pos + 8);
    } else {
      h.headerLength = 8;
      h.length = syn.little ? buf.readUInt16LE(pos + 6) : buf.readUInt16BE(pos + 6);
    }
  }
  h.valueOffset = pos + h.headerLength;
  if (h.length !== UNDEFINED_LENGTH && h.valueOffset + h.length > end) {
    throw new DeidParseError(`element value runs past the end of its container at byte ${pos}`);
  }
}

/** Size of an element header for a VR in a syntax. */
export function headerSize(vr: number, syn: Syntax): number {
  return syn.explicit && LONG_VRS.has(vr) ? 12 : 8;
}

/** Write an element header (tag, VR when explicit, length) at `at`; returns the header size. */
export function writeHeader(
  target: Buffer,
  at: number,
  tag: number,
  vr: number,
  length: number,
  syn: Syntax,
): number {
  const group = tag >>> 16;
  const element = tag & 0xffff;
  if (syn.little) {
    target.writeUInt16LE(group, at);
    target.writeUInt16LE(element, at + 2);
  } else {
    target.writeUInt16BE(group, at);
    target.writeUInt16BE(element, at + 2);
  }
  if (!syn.explicit || group === 0xfffe) {
    if (syn.little) target.writeUInt32LE(length >>> 0, at + 4);
    else target.writeUInt32BE(length >>> 0, at + 4);
    return 8;
  }
  target[at + 4] = vr >> 8;
  target[at + 5] = vr & 0xff;
  if (LONG_VRS.has(vr)) {
    target[at + 6] = 0;
    target[at + 7] = 0;
    if (syn.little) target.writeUInt32LE(length >>> 0, at + 8);
    else target.writeUInt32BE(length >>> 0, at + 8);
    return 12;
  }
  if (length > 0xffff) throw new DeidParseError(`value of ${vrName(vr)} too long (${length} bytes)`);
  if (syn.little) target.writeUInt16LE(length, at + 6);
  else target.writeUInt16BE(length, at + 6);
  return 8;
}

/** A complete element (header + value) as one Buffer. */
export function elementBytes(tag: number, vr: number, value: Buffer, syn: Syntax): Buffer {
  const size = headerSize(vr, syn);
  const out = Buffer.allocUnsafe(size + value.length);
  writeHeader(out, 0, tag, vr, value.length, syn);
  value.copy(out, size);
  return out;
}

/** An item or delimiter header (tag + 4-byte length), in the byte order of the syntax. */
export function itemHeader(tag: number, length: number, syn: Syntax): Buffer {
  const out = Buffer.allocUnsafe(8);
  writeHeader(out, 0, tag, 0, length, syn.little ? IMPLICIT_LE : IMPLICIT_BE);
  return out;
}

/**
 * End of an element with undefined length whose value starts at `pos`: a sequence (items, then a
 * sequence delimiter) or encapsulated pixel data (fragments, then a sequence delimiter).
 */
export function skipUndefined(buf: Buffer, pos: number, end: number, syn: Syntax, h: Header): number {
  for (;;) {
    readHeader(buf, pos, end, syn, h);
    if (h.tag === SEQUENCE_DELIMITER) return h.valueOffset;
    if (h.tag !== ITEM) throw new DeidParseError(`expected an item at byte ${pos}`);
    if (h.length !== UNDEFINED_LENGTH) {
      pos = h.valueOffset + h.length;
      continue;
    }
    pos = skipItemContent(buf, h.valueOffset, end, syn, h);
  }
}

/** Skip the elements of an undefined-length item; returns the position after its item delimiter. */
function skipItemContent(buf: Buffer, pos: number, end: number, syn: Syntax, h: Header): number {
  for (;;) {
    readHeader(buf, pos, end, syn, h);
    if (h.tag === ITEM_DELIMITER) return h.valueOffset;
    if (h.length !== UNDEFINED_LENGTH) {
      pos = h.valueOffset + h.length;
      continue;
    }
    const inner = innerSyntax(h.vr, syn);
    pos = skipUndefined(buf, h.valueOffset, end, inner, h);
  }
}

/** Syntax of the content of an undefined-length element: UN sequences are implicit VR little endian. */
export function innerSyntax(fileVr: number, syn: Syntax): Syntax {
  return fileVr === VR.UN ? IMPLICIT_LE : syn;
}
