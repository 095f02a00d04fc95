/**
 * Part-10 file preamble and File Meta Information (group 0002, always explicit VR little endian):
 * written the way dcmtk does (UIDs padded to even length with NUL, text (SH/AE) with a space), and
 * read back to find the transfer syntax and where the dataset starts.
 * Prepend a written header to a raw dataset received over DIMSE to get a Part-10 file.
 */

/** Implementation Class UID of this project (a fixed 2.25 UID). */
export const IMPLEMENTATION_CLASS_UID = "2.25.324787041226768125577162794544879044074";
/** Implementation Version Name (SH, at most 16 characters). */
export const IMPLEMENTATION_VERSION_NAME = "FIONA_TS_0.1";

export interface Part10MetaInput {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  /** Written as SourceApplicationEntityTitle (0002,0016) when non-empty: the calling AE title. */
  sourceAeTitle?: string;
}

/** A UID we are willing to write into a meta header: digits and dots, 1-64 characters. */
const META_UID_RE = /^[0-9][0-9.]{0,63}$/;

function element(group: number, elementNo: number, vr: string, value: Buffer): Buffer {
  const longForm = vr === "OB" || vr === "OW" || vr === "UN" || vr === "SQ" || vr === "UT";
  const head = Buffer.alloc(longForm ? 12 : 8);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(elementNo, 2);
  head.write(vr, 4, "latin1");
  if (longForm) head.writeUInt32LE(value.length, 8);
  else head.writeUInt16LE(value.length, 6);
  return Buffer.concat([head, value]);
}

function uidValue(uid: string, what: string): Buffer {
  if (!META_UID_RE.test(uid))
    throw new Error(`part10: ${what} is not a UID (digits and dots, 1-64 characters)`);
  const b = Buffer.from(uid, "latin1");
  return b.length % 2 === 0 ? b : Buffer.concat([b, Buffer.from([0])]);
}

function textValue(text: string): Buffer {
  const b = Buffer.from(text, "latin1");
  return b.length % 2 === 0 ? b : Buffer.concat([b, Buffer.from(" ", "latin1")]);
}

/** AE titles: printable ASCII without backslash, trimmed, at most 16 characters; undefined when nothing is left. */
function cleanAeTitle(ae: string | undefined): string | undefined {
  if (ae === undefined) return undefined;
  const cleaned = ae
    .replace(/[^\x20-\x5b\x5d-\x7e]/g, "")
    .trim()
    .slice(0, 16);
  return cleaned === "" ? undefined : cleaned;
}

/**
 * The 128-byte preamble, "DICM" and the File Meta Information group for one instance.
 * Throws when a UID is not digits and dots (1-64 characters).
 */
export function buildPart10Header(meta: Part10MetaInput): Buffer {
  const elements: Buffer[] = [
    element(0x0002, 0x0001, "OB", Buffer.from([0x00, 0x01])),
    element(0x0002, 0x0002, "UI", uidValue(meta.sopClassUid, "MediaStorageSOPClassUID")),
    element(0x0002, 0x0003, "UI", uidValue(meta.sopInstanceUid, "MediaStorageSOPInstanceUID")),
    element(0x0002, 0x0010, "UI", uidValue(meta.transferSyntaxUid, "TransferSyntaxUID")),
    element(0x0002, 0x0012, "UI", uidValue(IMPLEMENTATION_CLASS_UID, "ImplementationClassUID")),
    element(0x0002, 0x0013, "SH", textValue(IMPLEMENTATION_VERSION_NAME)),
  ];
  const ae = cleanAeTitle(meta.sourceAeTitle);
  if (ae !== undefined) elements.push(element(0x0002, 0x0016, "AE", textValue(ae)));
  const groupLength = elements.reduce((n, b) => n + b.length, 0);
  const lengthValue = Buffer.alloc(4);
  lengthValue.writeUInt32LE(groupLength, 0);
  const preamble = Buffer.alloc(132);
  preamble.write("DICM", 128, "latin1");
  return Buffer.concat([preamble, element(0x0002, 0x0000, "UL", lengthValue), ...elements]);
}

/** True when the bytes start with a 128-byte preamble and "DICM". */
export function isPart10(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 132 &&
    bytes[128] === 0x44 &&
    bytes[129] === 0x49 &&
    bytes[130] === 0x43 &&
    bytes[131] === 0x4d
  );
}

/** What the File Meta Information says; a UID is "" when its element is absent. */
export interface FileMeta {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  /** Offset of the first byte after the meta group: where the dataset starts. */
  datasetOffset: number;
}

/**
 * Why the meta group cannot be read. "truncated": the bytes end inside it, so a reader that read only
 * the head of a file should read more.
 */
export class FileMetaError extends Error {
  override name = "FileMetaError";
  constructor(
    readonly reason: "not-part10" | "truncated" | "malformed",
    message: string,
  ) {
    super(message);
  }
}

const LONG_VRS = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"]);

/**
 * Walk the File Meta Information of a Part-10 file. The dataset starts where the walk leaves group
 * 0002. For a conformant file that is exactly the end given by the group length (0002,0000); for a
 * file whose group length is wrong (seen in the wild), the element walk is what the bytes say, so it
 * wins, as in dcmtk. Throws FileMetaError.
 */
export function readFileMeta(bytes: Uint8Array): FileMeta {
  if (!isPart10(bytes)) throw new FileMetaError("not-part10", "not a Part-10 file (no DICM prefix)");
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const truncated = () => new FileMetaError("truncated", "file ends inside the meta group");
  const meta: FileMeta = { sopClassUid: "", sopInstanceUid: "", transferSyntaxUid: "", datasetOffset: 0 };
  let at = 132;
  for (;;) {
    if (at + 2 > b.length) {
      if (at === 132) throw truncated();
      break; // a file holding only the meta group
    }
    if (b.readUInt16LE(at) !== 0x0002) break;
    if (at + 8 > b.length) throw truncated();
    const element = b.readUInt16LE(at + 2);
    const vr = b.toString("latin1", at + 4, at + 6);
    if (!/^[A-Z]{2}$/.test(vr))
      throw new FileMetaError("malformed", "meta group is not explicit VR little endian");
    let header = 8;
    let length = b.readUInt16LE(at + 6);
    if (LONG_VRS.has(vr)) {
      if (at + 12 > b.length) throw truncated();
      header = 12;
      length = b.readUInt32LE(at + 8);
      if (length === 0xffffffff) throw new FileMetaError("malformed", "undefined length in the meta group");
    }
    const end = at + header + length;
    if (end > b.length) throw truncated();
    const value = () => b.toString("latin1", at + header, end).replace(/[\0 ]+$/, "");
    if (element === 0x0002) meta.sopClassUid = value();
    else if (element === 0x0003) meta.sopInstanceUid = value();
    else if (element === 0x0010) meta.transferSyntaxUid = value();
    at = end;
  }
  meta.datasetOffset = at;
  return meta;
}
