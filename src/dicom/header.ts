/**
 * Header reading with dicom-parser, stopping before PixelData.
 * A value is a string for single-valued text, a number for single-valued binary numbers and DS/IS,
 * and an array for multi-valued elements (backslash-separated text or several binary numbers).
 * An element that is present but empty reads as "".
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { TextDecoder } from "node:util";
import { inflateRawSync } from "node:zlib";
import dicomParser from "dicom-parser";
import type { ByteArrayParser, DataSet, Element } from "dicom-parser";
import { entryForKeyword, entryForTag, privateVr } from "./dictionary.js";
import { isPart10 } from "./part10.js";
import {
  DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
  EXPLICIT_VR_BIG_ENDIAN,
  IMPLICIT_VR_LITTLE_ENDIAN,
} from "./transfer-syntax.js";

export type TagValue = string | number | Array<string | number>;

/** What the classifier needs from a dataset. */
export interface TagSource {
  /** Top-level element by DICOM keyword (pydicom keyword, e.g. "SeriesDescription"). */
  keyword(name: string): TagValue | undefined;
  /** Top-level element by group/element. */
  tag(group: number, element: number): TagValue | undefined;
  /**
   * Element inside sequences, item 0 at each level: path is [[seqGroup, seqElement], …, [group, element]].
   * Returns undefined when any level is missing.
   */
  nested(path: Array<[number, number]>): TagValue | undefined;
}

export interface DicomHeader extends TagSource {
  /** Transfer syntax of the dataset. */
  transferSyntaxUid: string;
  /** Trimmed string value of a top-level element (keyword or "ggggeeee" hex), undefined when absent. */
  string(keywordOrTag: string): string | undefined;
  /** Whether a top-level element is present (even when empty or binary). */
  has(keywordOrTag: string): boolean;
  /** The values of a top-level element as text, one per value (DS/IS as written in the file). */
  strings(keywordOrTag: string): string[] | undefined;
  /** VR of a top-level element: explicit, else from the dictionaries, else "UN". */
  vr(keywordOrTag: string): string | undefined;
  /** Raw value bytes of a top-level element (e.g. a Siemens CSA header); a view, not a copy. */
  bytes(group: number, element: number): Uint8Array | undefined;
}

/** Not DICOM, truncated or malformed. The message never contains element values. */
export class DicomParseError extends Error {
  override name = "DicomParseError";
}

const PIXEL_DATA = "x7fe00010";
/** Enough for nearly every header; larger headers (big private blocks, no pixel data) re-read the file. */
const FIRST_CHUNK = 64 * 1024;

/** Parse a Part-10 file, or a raw dataset when `transferSyntaxUid` is given. Throws DicomParseError. */
export function readHeader(bytes: Uint8Array, opts: { transferSyntaxUid?: string } = {}): DicomHeader {
  return parse(bytes, opts.transferSyntaxUid, { fileSize: bytes.length, partial: false });
}

/** Read a file's header, usually from its first MiB only. Throws DicomParseError for bad content. */
export async function readHeaderFile(
  path: string,
  opts: { transferSyntaxUid?: string } = {},
): Promise<DicomHeader> {
  // Synchronous reads: a header is a few hundred kilobytes at most and in the page cache right after
  // receipt; four thread-pool round trips per file cost more than the read itself.
  const fd = openSync(path, "r");
  try {
    const { size } = fstatSync(fd);
    if (size > FIRST_CHUNK) {
      const chunk = readAt(fd, FIRST_CHUNK);
      try {
        return parse(chunk, opts.transferSyntaxUid, { fileSize: size, partial: true });
      } catch (err) {
        if (!(err instanceof HeaderBeyondChunk)) throw err;
      }
    }
    return parse(readAt(fd, size), opts.transferSyntaxUid, { fileSize: size, partial: false });
  } finally {
    closeSync(fd);
  }
}

function readAt(fd: number, length: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const bytesRead = readSync(fd, buffer, filled, length - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

/** A first chunk ended before PixelData: read the whole file instead. */
class HeaderBeyondChunk extends Error {}

interface ParseMode {
  /** Size of the whole file, to check PixelData's declared length. */
  fileSize: number;
  /** The bytes are only the start of the file. */
  partial: boolean;
}

function parse(bytes: Uint8Array, tsOption: string | undefined, mode: ParseMode): ParsedHeader {
  const part10 = isPart10(bytes);
  if (!part10 && !tsOption)
    throw new DicomParseError("not DICOM: no DICM prefix and no transfer syntax given");
  let parsed: { dataSet: DataSet; ts: string };
  try {
    parsed = parseDataSet(bufferOf(bytes), part10, tsOption);
  } catch (err) {
    if (err instanceof DicomParseError) throw err;
    if (mode.partial) throw new HeaderBeyondChunk();
    throw new DicomParseError(`truncated or malformed DICOM (${libraryMessage(err)})`);
  }
  const { dataSet, ts } = parsed;
  if (mode.partial && !dataSet.elements[PIXEL_DATA]) throw new HeaderBeyondChunk();
  checkComplete(
    dataSet,
    ts === DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN ? dataSet.byteArray.length : mode.fileSize,
    ts !== IMPLICIT_VR_LITTLE_ENDIAN,
  );
  return new ParsedHeader(dataSet, ts);
}

type DataSetConstructor = new (
  parser: ByteArrayParser,
  bytes: Uint8Array,
  elements: Record<string, Element>,
) => DataSet;
const DataSetClass = (dicomParser as unknown as { DataSet: DataSetConstructor }).DataSet;

/**
 * parseDicom's steps, done here because dicom-parser 1.8 restarts at offset 0 (the preamble) after
 * inflating a deflated dataset.
 */
function parseDataSet(
  bytes: Buffer,
  part10: boolean,
  tsOption: string | undefined,
): { dataSet: DataSet; ts: string } {
  let position = 0;
  let meta: Record<string, Element> = {};
  let ts = tsOption;
  if (part10) {
    const metaSet = dicomParser.readPart10Header(bytes);
    meta = metaSet.elements;
    position = (metaSet as DataSet & { position: number }).position;
    ts = metaTransferSyntax(metaSet) ?? tsOption;
    if (!ts) throw new DicomParseError("malformed DICOM: meta header has no transfer syntax");
  }
  const byteArray =
    ts === DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
      ? Buffer.concat([bytes.subarray(0, position), inflateRawSync(bytes.subarray(position))])
      : bytes;
  const parser =
    ts === EXPLICIT_VR_BIG_ENDIAN
      ? dicomParser.bigEndianByteArrayParser
      : dicomParser.littleEndianByteArrayParser;
  const dataSet = new DataSetClass(parser, byteArray, { ...meta });
  const stream = new dicomParser.ByteStream(parser, byteArray, position);
  dataSet.warnings = stream.warnings;
  const options = { untilTag: PIXEL_DATA, vrCallback: implicitVr as (tag: string) => string };
  if (ts === IMPLICIT_VR_LITTLE_ENDIAN)
    dicomParser.parseDicomDataSetImplicit(dataSet, stream, byteArray.length, options);
  else dicomParser.parseDicomDataSetExplicit(dataSet, stream, byteArray.length, options);
  return { dataSet, ts: ts! };
}

function libraryMessage(err: unknown): string {
  return typeof err === "string" ? err : err instanceof Error ? err.message : "parse error";
}

function metaTransferSyntax(meta: DataSet): string | undefined {
  const el = meta.elements["x00020010"];
  if (!el || el.dataOffset + el.length > meta.byteArray.length) return undefined;
  return bufferOf(meta.byteArray)
    .toString("latin1", el.dataOffset, el.dataOffset + el.length)
    .replace(/[\0 ]+$/, "");
}

const VALID_VRS = new Set(
  "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split(
    " ",
  ),
);

/** dicom-parser reads past the end without complaint in several places; catch that and garbage input. */
function checkComplete(dataSet: DataSet, fileSize: number, explicit: boolean): void {
  const end = dataSet.byteArray.length;
  let previous = "";
  for (const key in dataSet.elements) {
    const el = dataSet.elements[key]!;
    // readPart10Header already checked the meta group.
    if (el.tag <= "x0002ffff") continue;
    if (el.tag === PIXEL_DATA) {
      if (!el.hadUndefinedLength && el.dataOffset + el.length > fileSize) throw truncated(el);
      continue;
    }
    if (el.dataOffset + el.length > end) throw truncated(el);
    if (explicit && !VALID_VRS.has(el.vr ?? "")) {
      throw new DicomParseError(`malformed DICOM: invalid VR at ${formatTag(el.tag)}`);
    }
    if (!explicit && el.tag <= previous) throw new DicomParseError("malformed DICOM: elements out of order");
    previous = el.tag;
  }
  if (dataSet.warnings.some((w) => w.startsWith("eof encountered") && !w.includes("peeking"))) {
    throw new DicomParseError("truncated DICOM: a sequence ends past the end of the data");
  }
}

function truncated(el: Element): DicomParseError {
  return new DicomParseError(
    `truncated DICOM: element ${formatTag(el.tag)} extends past the end of the data`,
  );
}

function formatTag(key: string): string {
  return `(${key.slice(1, 5)},${key.slice(5, 9)})`.toUpperCase();
}

/** Implicit VR: the dictionary decides what is a sequence, so dicom-parser does not have to guess. */
function implicitVr(key: string): string | undefined {
  return entryForTag(parseInt(key.slice(1), 16))?.vr;
}

/** "SeriesDescription", "0008103e" or "x0008103E" -> tag number. */
function resolveTag(keywordOrTag: string): number | undefined {
  if (/^x?[0-9a-fA-F]{8}$/.test(keywordOrTag)) return parseInt(keywordOrTag.slice(-8), 16);
  return entryForKeyword(keywordOrTag)?.tag;
}

function elementKey(tag: number): string {
  return "x" + tag.toString(16).padStart(8, "0");
}

/** Items of a sequence; private sequences in implicit VR (or UN) are not parsed by dicom-parser, so parse lazily. */
function items(dataSet: DataSet, el: Element): Element[] | undefined {
  if (el.items) return el.items;
  const { byteArray, byteArrayParser: p } = dataSet;
  const start = el.dataOffset;
  if (el.length < 8 || start + el.length > byteArray.length) return undefined;
  if (p.readUint16(byteArray, start) !== 0xfffe || p.readUint16(byteArray, start + 2) !== 0xe000)
    return undefined;
  try {
    // dicom-parser already replaced an undefined length by the real one, so parse as known length.
    const copy: Element = { ...el };
    const stream = new dicomParser.ByteStream(p, byteArray, start);
    dicomParser.readSequenceItemsImplicit(stream, copy, implicitVr as (tag: string) => string);
    el.items = copy.items;
    return el.items;
  } catch {
    return undefined;
  }
}

class ParsedHeader implements DicomHeader {
  private readonly cache = new Map<number, Decoded | undefined>();
  private readonly charset: string;

  constructor(
    private readonly dataSet: DataSet,
    readonly transferSyntaxUid: string,
  ) {
    const charsetElement = dataSet.elements["x00080005"];
    this.charset = charsetElement
      ? (decodeElement(dataSet, charsetElement, 0x00080005, "")?.parts.join("\\") ?? "")
      : "";
  }

  keyword(name: string): TagValue | undefined {
    const tag = entryForKeyword(name)?.tag;
    return tag === undefined ? undefined : this.top(tag)?.value;
  }

  tag(group: number, element: number): TagValue | undefined {
    return this.top(((group << 16) | element) >>> 0)?.value;
  }

  nested(path: Array<[number, number]>): TagValue | undefined {
    let dataSet: DataSet | undefined = this.dataSet;
    for (let i = 0; i < path.length - 1 && dataSet; i++) {
      const [group, element] = path[i]!;
      const el: Element | undefined = dataSet.elements[elementKey(((group << 16) | element) >>> 0)];
      dataSet = el ? items(dataSet, el)?.[0]?.dataSet : undefined;
    }
    const last = path[path.length - 1];
    if (!dataSet || !last) return undefined;
    return this.decodedAt(dataSet, ((last[0] << 16) | last[1]) >>> 0)?.value;
  }

  string(keywordOrTag: string): string | undefined {
    return this.strings(keywordOrTag)?.join("\\");
  }

  strings(keywordOrTag: string): string[] | undefined {
    const tag = resolveTag(keywordOrTag);
    return tag === undefined ? undefined : this.top(tag)?.parts.map(String);
  }

  has(keywordOrTag: string): boolean {
    const tag = resolveTag(keywordOrTag);
    return tag !== undefined && this.dataSet.elements[elementKey(tag)] !== undefined;
  }

  vr(keywordOrTag: string): string | undefined {
    const tag = resolveTag(keywordOrTag);
    const el = tag === undefined ? undefined : this.dataSet.elements[elementKey(tag)];
    return el && resolveVr(this.dataSet, el, tag!);
  }

  bytes(group: number, element: number): Uint8Array | undefined {
    const el = this.dataSet.elements[elementKey(((group << 16) | element) >>> 0)];
    const { byteArray } = this.dataSet;
    if (!el || el.hadUndefinedLength || el.dataOffset + el.length > byteArray.length) return undefined;
    return byteArray.subarray(el.dataOffset, el.dataOffset + el.length);
  }

  private top(tag: number): Decoded | undefined {
    if (this.cache.has(tag)) return this.cache.get(tag);
    const decoded = this.decodedAt(this.dataSet, tag);
    this.cache.set(tag, decoded);
    return decoded;
  }

  private decodedAt(dataSet: DataSet, tag: number): Decoded | undefined {
    if (tag === 0x7fe00010) return undefined;
    const el = dataSet.elements[elementKey(tag)];
    return el ? decodeElement(dataSet, el, tag, this.charset) : undefined;
  }
}

// ---- value decoding ----

interface Decoded {
  /** VR used for decoding ("UN" for printable text of unknown type). */
  vr: string;
  /** One entry per value: text as written (trimmed) or binary numbers. */
  parts: string[] | number[];
  value: TagValue;
}

const BINARY_NUMBERS: Record<string, [size: number, read: (v: DataView, at: number, le: boolean) => number]> =
  {
    US: [2, (v, at, le) => v.getUint16(at, le)],
    SS: [2, (v, at, le) => v.getInt16(at, le)],
    UL: [4, (v, at, le) => v.getUint32(at, le)],
    SL: [4, (v, at, le) => v.getInt32(at, le)],
    FL: [4, (v, at, le) => v.getFloat32(at, le)],
    FD: [8, (v, at, le) => v.getFloat64(at, le)],
    SV: [8, (v, at, le) => Number(v.getBigInt64(at, le))],
    UV: [8, (v, at, le) => Number(v.getBigUint64(at, le))],
  };
const MULTI_TEXT = new Set("AE AS CS DA DS DT IS LO PN SH TM UC UI".split(" "));
const SINGLE_TEXT = new Set("LT ST UR UT".split(" "));
/** VRs affected by Specific Character Set; the others are ASCII. */
const CHARSET_TEXT = new Set("LO LT PN SH ST UC UT".split(" "));
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function decodeElement(dataSet: DataSet, el: Element, tag: number, charset: string): Decoded | undefined {
  const { byteArray } = dataSet;
  const start = el.dataOffset;
  const end = start + el.length;
  if (el.items || el.hadUndefinedLength || end > byteArray.length) return undefined;
  const vr = resolveVr(dataSet, el, tag);
  const number = BINARY_NUMBERS[vr];
  if (number) {
    const [size, read] = number;
    const view = viewOf(byteArray);
    const le = (el.parser ?? dataSet.byteArrayParser) !== dicomParser.bigEndianByteArrayParser;
    const parts: number[] = [];
    for (let at = start; at + size <= end; at += size) parts.push(read(view, at, le));
    return { vr, parts, value: collapse(parts) };
  }
  if (vr === "AT") {
    const view = viewOf(byteArray);
    const le = dataSet.byteArrayParser !== dicomParser.bigEndianByteArrayParser;
    const parts: string[] = [];
    for (let at = start; at + 4 <= end; at += 4) {
      const value = (view.getUint16(at, le) << 16) | view.getUint16(at + 2, le);
      parts.push((value >>> 0).toString(16).toUpperCase().padStart(8, "0"));
    }
    return { vr, parts, value: collapse(parts) };
  }
  const isText = MULTI_TEXT.has(vr) || SINGLE_TEXT.has(vr);
  if (!isText && (vr !== "UN" || !printable(byteArray, start, end))) return undefined;
  const text = decodeText(byteArray, start, end, CHARSET_TEXT.has(vr) ? charset : "").replace(/[\0 ]+$/, "");
  const parts = SINGLE_TEXT.has(vr) ? [text.trim()] : text.split("\\").map((s) => s.trim());
  const value = vr === "DS" || vr === "IS" ? parts.map((s) => (DECIMAL.test(s) ? Number(s) : s)) : parts;
  return { vr, parts, value: text === "" ? "" : collapse(value) };
}

function collapse(values: Array<string | number>): TagValue {
  if (values.length === 0) return "";
  return values.length === 1 ? values[0]! : values;
}

/** Explicit VR (or the dictionary's for implicit), private VRs by creator, "UN" when unknown. */
function resolveVr(dataSet: DataSet, el: Element, tag: number): string {
  if (el.vr && el.vr !== "UN") return el.vr;
  const group = tag >>> 16;
  const element = tag & 0xffff;
  if (element === 0) return "UL";
  if (group % 2 === 1) {
    if (element >= 0x10 && element <= 0xff) return "LO";
    const creatorTag = ((group << 16) | (element >> 8)) >>> 0;
    const creatorElement = dataSet.elements[elementKey(creatorTag)];
    const creator = creatorElement && decodeElement(dataSet, creatorElement, creatorTag, "")?.parts[0];
    return (typeof creator === "string" && privateVr(creator, group, element)) || "UN";
  }
  return entryForTag(tag)?.vr ?? "UN";
}

/** Text-looking bytes: printable ASCII and common whitespace, allowing NUL padding at the end. */
function printable(bytes: Uint8Array, start: number, end: number): boolean {
  let stop = end;
  while (stop > start && bytes[stop - 1] === 0) stop--;
  for (let i = start; i < stop; i++) {
    const b = bytes[i]!;
    if ((b < 0x20 || b > 0x7e) && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0x0c) return false;
  }
  return true;
}

const views = new WeakMap<Uint8Array, DataView>();
function viewOf(bytes: Uint8Array): DataView {
  let view = views.get(bytes);
  if (!view) views.set(bytes, (view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)));
  return view;
}

const buffers = new WeakMap<Uint8Array, Buffer>();
function bufferOf(bytes: Uint8Array): Buffer {
  if (Buffer.isBuffer(bytes)) return bytes;
  let buffer = buffers.get(bytes);
  if (!buffer) buffers.set(bytes, (buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)));
  return buffer;
}

/** Specific Character Set term -> WHATWG encoding label (ISO 2022 escapes are not interpreted). */
const ENCODINGS: Record<string, string> = {
  "ISO_IR 192": "utf-8",
  "ISO_IR 101": "iso-8859-2",
  "ISO_IR 109": "iso-8859-3",
  "ISO_IR 110": "iso-8859-4",
  "ISO_IR 144": "iso-8859-5",
  "ISO_IR 127": "iso-8859-6",
  "ISO_IR 126": "iso-8859-7",
  "ISO_IR 138": "iso-8859-8",
  "ISO_IR 148": "iso-8859-9",
  "ISO_IR 166": "windows-874",
  "ISO_IR 13": "shift_jis",
  GB18030: "gb18030",
  GBK: "gbk",
};
const decoders = new Map<string, TextDecoder | undefined>();

function decodeText(bytes: Uint8Array, start: number, end: number, charset: string): string {
  const buffer = bufferOf(bytes);
  let ascii = true;
  for (let i = start; i < end && ascii; i++) ascii = bytes[i]! < 0x80;
  const label = ascii ? undefined : ENCODINGS[charset.split("\\").find((term) => term in ENCODINGS) ?? ""];
  if (!label) return buffer.toString("latin1", start, end);
  if (label === "utf-8") return buffer.toString("utf8", start, end);
  if (!decoders.has(label)) {
    try {
      decoders.set(label, new TextDecoder(label));
    } catch {
      decoders.set(label, undefined);
    }
  }
  const decoder = decoders.get(label);
  return decoder ? decoder.decode(bytes.subarray(start, end)) : buffer.toString("latin1", start, end);
}
