/**
 * Part-10 file preamble and File Meta Information (group 0002, always explicit VR little endian),
 * written the way dcmtk does: UIDs padded to even length with NUL, text (SH/AE) with a space.
 * Prepend the result to a raw dataset received over DIMSE to get a Part-10 file.
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
export function cleanAeTitle(ae: string | undefined): string | undefined {
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
