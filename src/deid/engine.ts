/**
 * The de-identification engine: Part-10 bytes in, Part-10 bytes out, same transfer syntax.
 *
 * The data set is walked at byte level (explicit/implicit VR little endian, explicit VR big endian,
 * deflated explicit VR little endian). Untouched elements, pixel data and encapsulated fragments are
 * copied as slices of the input; a changed element is re-encoded with its original VR; a sequence
 * with a change inside is re-emitted with recomputed lengths (defined-length sequences and items stay
 * defined, undefined ones keep their delimiters). Group 0002 is rebuilt (new MediaStorageSOPInstanceUID,
 * same transfer syntax, this project's implementation UID); dataset group lengths (gggg,0000) are dropped.
 *
 * Deliberate differences from DICOMAnonymizer (reference 1.11), all by design:
 *  - "remove" removes public elements, private elements and whole sequences; a remove on a Type 2
 *    attribute empties it instead.
 *  - Attributes FIONA's list does not mention follow the PS3.15 Basic profile; remaining PN elements are
 *    emptied, remaining instance UIDs mapped, remaining DA/DT shifted (a dummy date when the project
 *    retains no dates), all at any depth. A sequence a profile would empty but that is not Type 2 is
 *    removed (an empty Type 3 sequence is invalid), e.g. ReferencedStudySequence.
 *  - Private tags are removed unless the project keeps them; kept ones are copied byte for byte (VR too).
 *    The Sectra rule matches creator SECTRA_Ident_01 (the original's creator column never matched).
 *  - UIDs are 2.25.<HMAC> by default (see uid.ts); fiona-legacy reproduces the original recipe, applied
 *    to every mapped UID (the original left hashuid-rule UIDs as bare 64-digit strings), and a nested
 *    StudyInstanceUID hashes its own value (the original wrote the current study's).
 *  - AccessionNumber is a keyed 16-digit hash (legacy: the original's unkeyed hash), StudyID the first
 *    16 digits of the new StudyInstanceUID's hash part; empty values stay empty.
 *  - Unparseable dates are emptied (never a random 1970 date); DateOfSecondaryCapture is not created.
 *  - PatientName/PatientID become the participant (never empty), ReferringPhysicianName
 *    "EventName:<event>", the clinical-trial subject/study attributes are complete (sponsor = project,
 *    empty site ID/name), LongitudinalTemporalInformationModified is always written, and
 *    DeidentificationMethodCodeSequence holds valid DCM codes for what was really applied.
 */
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { buildPart10Header } from "../dicom/part10.js";
import {
  EXPLICIT_BE,
  EXPLICIT_LE,
  Header,
  IMPLICIT_LE,
  ITEM,
  ITEM_DELIMITER,
  PIXEL_DATA,
  SEQUENCE_DELIMITER,
  UNDEFINED_LENGTH,
  VR,
  elementBytes,
  headerSize,
  innerSyntax,
  itemHeader,
  maxLength,
  readHeader,
  skipUndefined,
  vrCode,
  writeHeader,
  type Syntax,
} from "./bytes.js";
import { shiftDateValue } from "./dates.js";
import { DeidError, DeidParseError, DeidRefusedError } from "./errors.js";
import {
  blankRectangles,
  dropReason,
  matchRectangles,
  type PixelGeometry,
  type Rectangle,
} from "./pixels.js";
import {
  A,
  BODY_PARTS,
  L,
  METHOD_CODES,
  TYPE2_BY_SOP_CLASS,
  compileProfile,
  dummyValue,
  type CompiledProfile,
  type Rule,
} from "./profile.js";
import { projectDeidSchema, type ProjectDeid, type ProjectDeidInput } from "./project.js";
import {
  UidMapper,
  isWellKnownUid,
  keyedDigits,
  legacyDigits,
  normalizeUid,
  projectDateOffset,
} from "./uid.js";
import { entryForTag } from "../dicom/dictionary.js";

export interface DeidContext {
  /** The project's settings (raw configuration or already parsed with projectDeidSchema). */
  project: ProjectDeidInput | ProjectDeid;
  /** Participant pseudonym: PatientName, PatientID and ClinicalTrialSubjectID. */
  participant: string;
  /** Event name (time point), when the transfer has one. */
  event?: string;
  /** Site secret (HMAC key for UIDs, accession numbers and the derived date offset). */
  secret: string;
  /** The series' ClassifyType list, for the burned-in decision. */
  classifyTypes?: readonly string[];
}

export interface DeidResult {
  dropped?: undefined;
  /** The de-identified Part-10 file. */
  bytes: Buffer;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  studyInstanceUid: string;
  sopClassUid: string;
  transferSyntaxUid: string;
  /** True when configured pixel rectangles were blanked. */
  pixelsCleaned: boolean;
}

export interface DeidDropped {
  /** Why the instance is not sent (presentation state, burned-in annotation…). */
  dropped: string;
}

export type DeidOutcome = DeidResult | DeidDropped;

const TS_IMPLICIT_LE = "1.2.840.10008.1.2";
const TS_EXPLICIT_LE = "1.2.840.10008.1.2.1";
const TS_EXPLICIT_BE = "1.2.840.10008.1.2.2";
const TS_DEFLATED = "1.2.840.10008.1.2.1.99";
const NATIVE_SYNTAXES = new Set([TS_IMPLICIT_LE, TS_EXPLICIT_LE, TS_EXPLICIT_BE, TS_DEFLATED]);

const TAG_SOP_CLASS = 0x00080016;
const TAG_SOP_INSTANCE = 0x00080018;
const TAG_STUDY_UID = 0x0020000d;
const TAG_SERIES_UID = 0x0020000e;
const TAG_BURNED_IN = 0x00280301;
const TAG_METHOD_CODES = 0x00120064;

const EMPTY = Buffer.alloc(0);
const EMPTY_RULE: Rule = { act: A.EMPTY, lit: L.FIXED, text: "", cim: false };
const NO_CREATE: CompiledProfile["create"] = [];
const PARTICIPANT_RE = /^[\x20-\x5b\x5d-\x7e]{1,64}$/;
const EVENT_RE = /^[\x20-\x5b\x5d-\x7e]{1,54}$/;

/** Top-level elements read before the walk (slot per tag). */
const SCAN_TAGS = [
  0x00080005, 0x00080016, 0x00080018, 0x00080050, 0x00080070, 0x00081090, 0x00100010, 0x00100020, 0x00100030,
  0x00101000, 0x00101001, 0x0020000d, 0x0020000e, 0x00280002, 0x00280006, 0x00280008, 0x00280010, 0x00280011,
  0x00280100, 0x00280301, 0x7fe00010,
] as const;
const SCAN_SLOT = new Map<number, number>(SCAN_TAGS.map((t, i) => [t, i]));

// ---------------------------------------------------------------------------------------------------
// Project preparation (memoised)

interface Prepared {
  project: ProjectDeid;
  profile: CompiledProfile;
  participantRe: RegExp | undefined;
}

const preparedCache = new WeakMap<object, Prepared>();
/** Same settings passed as a new object each call (e.g. configuration re-read per job): keyed by JSON. */
const preparedByJson = new Map<string, Prepared>();

function prepare(input: ProjectDeidInput | ProjectDeid): Prepared {
  let p = preparedCache.get(input);
  if (!p) {
    const json = JSON.stringify(input);
    p = preparedByJson.get(json);
    if (!p) {
      const project = projectDeidSchema.parse(input);
      p = {
        project,
        profile: compileProfile(project),
        participantRe: project.participantPattern
          ? new RegExp(`^(?:${project.participantPattern})$`)
          : undefined,
      };
      if (preparedByJson.size >= 64) preparedByJson.clear();
      preparedByJson.set(json, p);
    }
    preparedCache.set(input, p);
  }
  return p;
}

interface Keyring {
  mapper: UidMapper;
  dateOffset: number;
}

/** Per parsed project: secret -> keyring (UID memo and date offset). */
const keyrings = new WeakMap<ProjectDeid, Map<string, Keyring>>();

function keyring(project: ProjectDeid, secret: string): Keyring {
  let bySecret = keyrings.get(project);
  if (!bySecret) keyrings.set(project, (bySecret = new Map()));
  let k = bySecret.get(secret);
  if (!k) {
    if (bySecret.size >= 16) bySecret.clear();
    k = {
      mapper: new UidMapper(project.name, secret, project.uidMode),
      dateOffset: projectDateOffset(project.name, secret, project.dateOffsetDays, project.dateOffsetRange),
    };
    bySecret.set(secret, k);
  }
  return k;
}

const methodCodesCache = new WeakMap<CompiledProfile, Map<string, Buffer>>();

/** The date offset (days) the engine applies for a project and secret. */
export function dateOffsetFor(project: ProjectDeidInput | ProjectDeid, secret: string): number {
  return keyring(prepare(project).project, secret).dateOffset;
}

// ---------------------------------------------------------------------------------------------------
// Output buffer list

class Out {
  chunks: Buffer[] = [];
  size = 0;
  changed = false;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.size += b.length;
  }

  copy(buf: Buffer, from: number, to: number): void {
    if (to > from) this.push(buf.subarray(from, to));
  }

  append(other: Out): void {
    for (const c of other.chunks) this.chunks.push(c);
    this.size += other.size;
  }
}

/** Text without leading spaces and trailing spaces/NULs (the DICOM padding). */
const trimText = normalizeUid;

// ---------------------------------------------------------------------------------------------------
// Parsing the Part-10 frame

interface Frame {
  transferSyntaxUid: string;
  mediaSopClassUid: string;
  mediaSopInstanceUid: string;
  dataset: Buffer;
  syntax: Syntax;
  deflated: boolean;
}

function readFrame(input: Uint8Array): Frame {
  const file = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (file.length < 132 || file.toString("latin1", 128, 132) !== "DICM") {
    throw new DeidParseError("not a DICOM Part-10 file (no DICM prefix)");
  }
  const h = new Header();
  let pos = 132;
  let ts = "";
  let cls = "";
  let inst = "";
  while (pos + 8 <= file.length && file.readUInt16LE(pos) === 0x0002) {
    readHeader(file, pos, file.length, EXPLICIT_LE, h);
    if (h.length === UNDEFINED_LENGTH) throw new DeidParseError("undefined length in the file meta group");
    const value = () => trimText(file.toString("latin1", h.valueOffset, h.valueOffset + h.length));
    if (h.tag === 0x00020010) ts = value();
    else if (h.tag === 0x00020002) cls = value();
    else if (h.tag === 0x00020003) inst = value();
    pos = h.valueOffset + h.length;
  }
  if (ts === "") throw new DeidParseError("file meta group has no TransferSyntaxUID");
  let dataset = file.subarray(pos);
  let syntax = EXPLICIT_LE;
  let deflated = false;
  if (ts === TS_IMPLICIT_LE) syntax = IMPLICIT_LE;
  else if (ts === TS_EXPLICIT_BE) syntax = EXPLICIT_BE;
  else if (ts === TS_DEFLATED) {
    deflated = true;
    try {
      dataset = inflateRawSync(dataset);
    } catch {
      throw new DeidParseError("deflated data set cannot be inflated");
    }
  }
  return {
    transferSyntaxUid: ts,
    mediaSopClassUid: cls,
    mediaSopInstanceUid: inst,
    dataset,
    syntax,
    deflated,
  };
}

// ---------------------------------------------------------------------------------------------------
// The walk

class Walk {
  readonly h = new Header();
  readonly end: number;
  /** Offsets/lengths of the top-level scan (2 per slot, -1 when absent). */
  readonly scan = new Int32Array(SCAN_TAGS.length * 2).fill(-1);
  readonly utf8: boolean;
  /** Attributes that are Type 2 in this instance's IOD beyond the profile's common list. */
  readonly type2: ReadonlySet<number> | undefined;
  cleanRects: readonly Rectangle[] | undefined;
  geometry: PixelGeometry | undefined;
  pixelsCleaned = false;
  private studyIdCache: string | undefined;
  private identifiers: string[] | undefined;
  /** Final top-level values of the three instance UIDs (as written). */
  newSop = "";
  newSeries = "";
  newStudy = "";

  constructor(
    readonly buf: Buffer,
    readonly syn: Syntax,
    readonly profile: CompiledProfile,
    readonly project: ProjectDeid,
    readonly ring: Keyring,
    readonly secret: string,
    readonly participant: string,
    readonly event: string | undefined,
  ) {
    this.end = buf.length;
    this.prescan();
    this.utf8 = (this.text(0x00080005) ?? "").includes("ISO_IR 192");
    const sopClass = this.text(TAG_SOP_CLASS) ?? "";
    this.type2 = TYPE2_BY_SOP_CLASS.find(([prefix]) => sopClass.startsWith(prefix))?.[1];
  }

  // -- top-level scan ---------------------------------------------------------------------------------

  private prescan(): void {
    const { buf, h, syn, end } = this;
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
    const slot = SCAN_SLOT.get(tag)!;
    const off = this.scan[slot * 2]!;
    const len = this.scan[slot * 2 + 1]!;
    if (off < 0 || len < 0) return undefined;
    return trimText(this.buf.toString("latin1", off, off + len));
  }

  /** Raw (untrimmed) text of a scanned top-level element. */
  raw(tag: number): string | undefined {
    const slot = SCAN_SLOT.get(tag)!;
    const off = this.scan[slot * 2]!;
    const len = this.scan[slot * 2 + 1]!;
    if (off < 0 || len < 0) return undefined;
    return this.buf.toString("latin1", off, off + len);
  }

  /** US value of a scanned top-level element. */
  us(tag: number): number | undefined {
    const slot = SCAN_SLOT.get(tag)!;
    const off = this.scan[slot * 2]!;
    const len = this.scan[slot * 2 + 1]!;
    if (off < 0 || len < 2) return undefined;
    return this.syn.little ? this.buf.readUInt16LE(off) : this.buf.readUInt16BE(off);
  }

  /** Pixel data: [offset, length], length -2 when encapsulated (undefined length). */
  pixelData(): [number, number] | undefined {
    const slot = SCAN_SLOT.get(PIXEL_DATA)!;
    const off = this.scan[slot * 2]!;
    return off < 0 ? undefined : [off, this.scan[slot * 2 + 1]!];
  }

  // -- value helpers ---------------------------------------------------------------------------------

  private encode(text: string, vr: number): Buffer {
    const max = vr === 0 ? 65534 : maxLength(vr);
    if (text.length > max) text = text.slice(0, max);
    const enc = this.utf8 ? "utf8" : "latin1";
    const len = Buffer.byteLength(text, enc);
    const out = Buffer.allocUnsafe(len + (len & 1));
    out.write(text, 0, enc);
    if (len & 1) out[len] = vr === VR.UI ? 0 : 0x20;
    return out;
  }

  private sameBytes(value: Buffer, offset: number, length: number): boolean {
    return value.length === length && this.buf.compare(value, 0, value.length, offset, offset + length) === 0;
  }

  private literal(rule: Rule): string {
    switch (rule.lit) {
      case L.PROJECT:
        return this.project.name;
      case L.PARTICIPANT:
        return this.participant;
      case L.EVENT:
        return this.event ?? "";
      case L.EVENT_REF:
        return this.event === undefined ? "" : `EventName:${this.event}`;
      case L.METHOD:
        return this.profile.methodText;
      case L.LONGITUDINAL:
        return this.profile.temporal === "modified"
          ? "MODIFIED"
          : this.profile.temporal === "full"
            ? "UNMODIFIED"
            : "REMOVED";
      default:
        return rule.text;
    }
  }

  private mapUids(tag: number, offset: number, length: number): string | undefined {
    const raw = this.buf.toString("latin1", offset, offset + length);
    const mapper = this.ring.mapper;
    if (mapper.mode === "fiona-legacy") {
      const clean = normalizeUid(raw);
      if (clean === "" || isWellKnownUid(clean)) return undefined;
      let r = raw;
      if (tag === TAG_STUDY_UID) while (r.endsWith("\u0000")) r = r.slice(0, -1);
      return mapper.mapLegacyRaw(r);
    }
    if (!raw.includes("\\")) {
      const clean = normalizeUid(raw);
      if (clean === "" || isWellKnownUid(clean)) return undefined;
      return mapper.mapClean(clean);
    }
    let changed = false;
    const parts = raw.split("\\").map((part) => {
      const clean = normalizeUid(part);
      if (clean === "" || isWellKnownUid(clean)) return clean;
      changed = true;
      return mapper.mapClean(clean);
    });
    return changed ? parts.join("\\") : undefined;
  }

  private studyId(fallbackOffset: number, fallbackLength: number): string {
    if (this.studyIdCache !== undefined) return this.studyIdCache;
    const rawStudy = this.raw(TAG_STUDY_UID);
    const project = this.project.name;
    let id: string;
    if (rawStudy !== undefined && normalizeUid(rawStudy) !== "") {
      if (this.ring.mapper.mode === "fiona-legacy") {
        let r = rawStudy;
        while (r.endsWith("\u0000")) r = r.slice(0, -1);
        id = legacyDigits(Buffer.concat([Buffer.from(r, "latin1"), Buffer.from(project, "utf8")])).slice(
          0,
          16,
        );
      } else {
        const mapped = this.ring.mapper.mapClean(normalizeUid(rawStudy));
        id = mapped.slice(5, 21);
      }
    } else {
      const own = trimText(this.buf.toString("latin1", fallbackOffset, fallbackOffset + fallbackLength));
      id = this.hashText(
        "StudyID",
        own,
        this.buf.toString("latin1", fallbackOffset, fallbackOffset + fallbackLength),
      );
    }
    this.studyIdCache = id;
    return id;
  }

  private hashText(label: string, value: string, raw: string): string {
    const mapper = this.ring.mapper;
    if (mapper.mode === "fiona-legacy") {
      return mapper.memo(`\u0002${raw}`, () => legacyDigits(Buffer.from(raw, "latin1")).slice(0, 16));
    }
    return mapper.memo(`\u0003${label}\u0000${value}`, () =>
      keyedDigits(this.secret, label, this.project.name, value, 16),
    );
  }

  /** The patient's identifiers (lower case, longest first) for Clean Descriptors. */
  private patientIdentifiers(): string[] {
    if (this.identifiers) return this.identifiers;
    const found = new Set<string>();
    const add = (s: string | undefined, split: RegExp) => {
      for (const part of (s ?? "").split(split)) {
        const t = part.trim().toLowerCase();
        if (t.length >= 3) found.add(t);
      }
    };
    add(this.text(0x00100010), /[\^=\\ ,]+/);
    add(this.text(0x00101001), /[\^=\\ ,]+/);
    add(this.text(0x00100020), /\\/);
    add(this.text(0x00101000), /\\/);
    add(this.text(0x00080050), /\\/);
    add(this.text(0x00100030), /\\/);
    this.identifiers = [...found].sort((a, b) => b.length - a.length);
    return this.identifiers;
  }

  private clean(value: string): string {
    let out = value;
    for (const id of this.patientIdentifiers()) {
      let lower = out.toLowerCase();
      for (let at = lower.indexOf(id); at !== -1; at = lower.indexOf(id)) {
        out = out.slice(0, at) + out.slice(at + id.length);
        lower = out.toLowerCase();
      }
    }
    return out === value ? value : out.replace(/\s{2,}/g, " ").trim();
  }

  /**
   * New value for a non-sequence element: undefined = unchanged, null = remove.
   * `vr` is the effective VR (0 when unknown).
   */
  private apply(
    rule: Rule,
    tag: number,
    vr: number,
    offset: number,
    length: number,
  ): Buffer | null | undefined {
    switch (rule.act) {
      case A.KEEP:
      case A.METHOD_CODES:
        return undefined;
      case A.REMOVE:
        return null;
      case A.EMPTY:
        return length === 0 ? undefined : EMPTY;
      case A.DUMMY: {
        if (length === 0) return undefined;
        if (vr === VR.UI) return this.apply({ ...rule, act: A.UID }, tag, vr, offset, length);
        const dummy = dummyValue(vr);
        if (dummy === undefined) return EMPTY;
        const b = this.encode(dummy, vr);
        return this.sameBytes(b, offset, length) ? undefined : b;
      }
      case A.UID: {
        if (vr !== VR.UI && vr !== 0 && vr !== VR.UN) return undefined;
        const mapped = this.mapUids(tag, offset, length);
        return mapped === undefined ? undefined : this.encode(mapped, VR.UI);
      }
      case A.HASH: {
        const raw = this.buf.toString("latin1", offset, offset + length);
        const value = trimText(raw);
        if (value === "") return undefined;
        return this.encode(this.hashText("AccessionNumber", value, raw), vr || VR.SH);
      }
      case A.STUDY_ID: {
        const b = this.encode(this.studyId(offset, length), vr || VR.SH);
        return this.sameBytes(b, offset, length) ? undefined : b;
      }
      case A.SHIFT: {
        const value = trimText(this.buf.toString("latin1", offset, offset + length));
        if (value === "") return undefined;
        const shifted = shiftDateValue(value, this.ring.dateOffset);
        if (shifted === undefined) return EMPTY;
        if (shifted === value) return undefined;
        return this.encode(shifted, vr || VR.DA);
      }
      case A.LITERAL: {
        const b = this.encode(this.literal(rule), vr);
        return this.sameBytes(b, offset, length) ? undefined : b;
      }
      case A.BODYPART: {
        const value = trimText(this.buf.toString("latin1", offset, offset + length));
        if (value === "" || BODY_PARTS.has(value.toUpperCase())) return undefined;
        return this.encode("BODYPART", vr || VR.CS);
      }
      case A.CLEAN: {
        const enc = this.utf8 ? "utf8" : "latin1";
        const value = this.buf.toString(enc, offset, offset + length);
        const cleaned = this.clean(value);
        return cleaned === value ? undefined : this.encode(trimText(cleaned), vr);
      }
      default:
        return undefined;
    }
  }

  // -- emitting --------------------------------------------------------------------------------------

  private emit(out: Out, tag: number, headerVr: number, value: Buffer, syn: Syntax): void {
    out.push(elementBytes(tag, headerVr, value, syn));
  }

  /** DeidentificationMethodCodeSequence with the codes that apply to this file (memoised per profile). */
  private methodCodes(syn: Syntax): Buffer {
    const key = `${syn.explicit ? "E" : "I"}${syn.little ? "L" : "B"}${this.cleanRects ? "C" : ""}${this.utf8 ? "U" : ""}`;
    let cache = methodCodesCache.get(this.profile);
    if (!cache) methodCodesCache.set(this.profile, (cache = new Map()));
    let bytes = cache.get(key);
    if (!bytes) cache.set(key, (bytes = this.buildMethodCodes(syn)));
    return bytes;
  }

  private buildMethodCodes(syn: Syntax): Buffer {
    const codes = [...this.profile.codes];
    if (this.cleanRects) codes.splice(1, 0, "113101"); // decided before the walk; PixelData comes last
    const items: Buffer[] = [];
    for (const code of codes) {
      const content = Buffer.concat([
        elementBytes(0x00080100, VR.SH, this.encode(code, VR.SH), syn),
        elementBytes(0x00080102, VR.SH, this.encode("DCM", VR.SH), syn),
        elementBytes(0x00080104, VR.LO, this.encode(METHOD_CODES[code] ?? code, VR.LO), syn),
      ]);
      items.push(itemHeader(ITEM, content.length, syn), content);
    }
    return elementBytes(TAG_METHOD_CODES, VR.SQ, Buffer.concat(items), syn);
  }

  /** A missing element the profile creates (top level). */
  private create(out: Out, tag: number, vr: number, rule: Rule, syn: Syntax): void {
    const r = rule.noEvent && this.event === undefined ? rule.noEvent : rule;
    if (r.act === A.REMOVE) return;
    if (r.act === A.METHOD_CODES) {
      out.push(this.methodCodes(syn));
      return;
    }
    if (vr === VR.SQ) {
      this.emit(out, tag, vr, EMPTY, syn);
      return;
    }
    const value = r.act === A.LITERAL ? this.encode(this.literal(r), vr) : EMPTY;
    this.emit(out, tag, vr, value, syn);
  }

  private effectiveVr(tag: number, fileVr: number): number {
    if (fileVr !== 0 && fileVr !== VR.UN) return fileVr;
    if (((tag >>> 16) & 1) === 1) return fileVr;
    const known = entryForTag(tag)?.vr;
    return known === undefined ? fileVr : vrCode(known);
  }

  private looksLikeSequence(offset: number, length: number, syn: Syntax): boolean {
    if (length < 8) return false;
    const b = this.buf;
    const tag = syn.little
      ? ((b.readUInt16LE(offset) << 16) | b.readUInt16LE(offset + 2)) >>> 0
      : ((b.readUInt16BE(offset) << 16) | b.readUInt16BE(offset + 2)) >>> 0;
    if (tag !== ITEM) return false;
    const itemLength = syn.little ? b.readUInt32LE(offset + 4) : b.readUInt32BE(offset + 4);
    return itemLength === UNDEFINED_LENGTH || itemLength + 8 <= length;
  }

  /**
   * Walk the elements in [start, end). With `untilDelimiter`, stops at an item delimitation item and
   * returns its position; otherwise returns `end`. Unchanged bytes are copied to `out` as slices.
   */
  walk(start: number, end: number, syn: Syntax, depth: number, out: Out, untilDelimiter: boolean): number {
    const { buf, h, profile } = this;
    const create = depth === 0 ? profile.create : NO_CREATE;
    let createAt = 0;
    let creators: Map<number, string> | undefined;
    let pos = start;
    let span = start;
    while (pos < end) {
      readHeader(buf, pos, end, syn, h);
      const tag = h.tag;
      if (tag === ITEM_DELIMITER && untilDelimiter) {
        out.copy(buf, span, pos);
        return pos;
      }
      const elemStart = pos;
      const fileVr = h.vr;
      const length = h.length;
      const valueOffset = h.valueOffset;
      const group = tag >>> 16;
      const element = tag & 0xffff;

      // Elements the profile creates, before the first element with a higher tag.
      while (createAt < create.length && create[createAt]!.tag < tag) {
        const c = create[createAt++]!;
        out.copy(buf, span, elemStart);
        span = elemStart;
        this.create(out, c.tag, c.vr, c.rule, syn);
        out.changed = true;
      }
      if (createAt < create.length && create[createAt]!.tag === tag) createAt++;

      // Decide.
      let rule: Rule | undefined;
      let drop = false;
      const isPrivate = (group & 1) === 1;
      if (group === 0xfffe) {
        // stray item/delimiter inside a data set: copied
      } else if (element === 0x0000) {
        drop = true; // group length: retired, and wrong once anything changes
      } else if (isPrivate) {
        if (!profile.keepPrivate) drop = true;
        else {
          if (element >= 0x0010 && element <= 0x00ff && length !== UNDEFINED_LENGTH) {
            creators ??= new Map();
            creators.set(
              (group << 8) | element,
              trimText(buf.toString("latin1", valueOffset, valueOffset + length)),
            );
          }
          rule = profile.privateOverrides.get(tag);
          if (rule === undefined && element >= 0x1000 && profile.privateRules.size > 0) {
            const creator = creators?.get((group << 8) | (element >> 8));
            if (creator !== undefined)
              rule = profile.privateRules.get(`${creator}|${group}|${element & 0xff}`);
          }
        }
      } else {
        rule = profile.rules.get(tag);
      }
      if (rule?.noEvent && this.event === undefined) rule = rule.noEvent;
      if (rule?.act === A.REMOVE) {
        if (depth === 0 && this.type2?.has(tag)) rule = EMPTY_RULE;
        else drop = true;
      }

      const vr = this.effectiveVr(tag, fileVr);
      let isSequence = vr === VR.SQ;
      let guessed = false;
      let encapsulated = false;
      if (!isSequence && group !== 0xfffe) {
        if (length === UNDEFINED_LENGTH) {
          if (fileVr === VR.UN || (fileVr === 0 && tag !== PIXEL_DATA)) isSequence = true;
          else encapsulated = true;
        } else if (
          (vr === 0 || vr === VR.UN) &&
          this.looksLikeSequence(valueOffset, length, innerSyntax(fileVr, syn))
        ) {
          isSequence = guessed = true;
        }
      }
      const inner = innerSyntax(fileVr, syn);

      if (drop) {
        const elemEnd =
          length === UNDEFINED_LENGTH
            ? skipUndefined(buf, valueOffset, this.end, inner, h)
            : valueOffset + length;
        out.copy(buf, span, elemStart);
        out.changed = true;
        pos = span = elemEnd;
        continue;
      }

      if (isSequence) {
        const headerVr = fileVr === 0 ? VR.SQ : fileVr;
        if (
          rule &&
          (rule.act === A.EMPTY || rule.act === A.DUMMY || (rule.act === A.METHOD_CODES && depth === 0))
        ) {
          const elemEnd =
            length === UNDEFINED_LENGTH
              ? skipUndefined(buf, valueOffset, this.end, inner, h)
              : valueOffset + length;
          out.copy(buf, span, elemStart);
          if (rule.act === A.METHOD_CODES) out.push(this.methodCodes(syn));
          else this.emit(out, tag, headerVr, EMPTY, syn);
          out.changed = true;
          pos = span = elemEnd;
          continue;
        }
        const sub = new Out();
        let elemEnd = -1;
        try {
          elemEnd = this.sequence(valueOffset, length, inner, depth + 1, sub);
        } catch (e) {
          // A value of unknown VR that only looked like a sequence: treated as an opaque value below.
          if (!guessed || !(e instanceof DeidParseError)) throw e;
        }
        if (elemEnd >= 0) {
          if (sub.changed) {
            out.copy(buf, span, elemStart);
            const header = Buffer.allocUnsafe(headerSize(headerVr, syn));
            writeHeader(
              header,
              0,
              tag,
              headerVr,
              length === UNDEFINED_LENGTH ? UNDEFINED_LENGTH : sub.size,
              syn,
            );
            out.push(header);
            out.append(sub);
            if (length === UNDEFINED_LENGTH) out.push(itemHeader(SEQUENCE_DELIMITER, 0, inner));
            out.changed = true;
            span = elemEnd;
          }
          pos = elemEnd;
          continue;
        }
      }

      if (encapsulated) {
        pos = skipUndefined(buf, valueOffset, this.end, inner, h);
        continue;
      }

      const elemEnd = valueOffset + length;
      let value: Buffer | null | undefined;
      if (depth === 0 && tag === PIXEL_DATA && this.cleanRects) {
        value = Buffer.from(buf.subarray(valueOffset, elemEnd));
        blankRectangles(value, this.geometry!, this.cleanRects);
        this.pixelsCleaned = true;
      } else if (depth === 0 && tag === TAG_BURNED_IN && this.cleanRects) {
        value = this.encode("NO", VR.CS);
        if (this.sameBytes(value, valueOffset, length)) value = undefined;
      } else if (rule) {
        value = this.apply(rule, tag, vr, valueOffset, length);
      } else if (vr === VR.PN && !isPrivate) {
        value = length === 0 ? undefined : EMPTY;
      }

      if (depth === 0 && (tag === TAG_SOP_INSTANCE || tag === TAG_SERIES_UID || tag === TAG_STUDY_UID)) {
        const written =
          value === null
            ? ""
            : normalizeUid(
                value === undefined ? buf.toString("latin1", valueOffset, elemEnd) : value.toString("latin1"),
              );
        if (tag === TAG_SOP_INSTANCE) this.newSop = written;
        else if (tag === TAG_SERIES_UID) this.newSeries = written;
        else this.newStudy = written;
      }

      if (value !== undefined) {
        out.copy(buf, span, elemStart);
        if (value !== null) this.emit(out, tag, fileVr === 0 ? vr : fileVr, value, syn);
        out.changed = true;
        span = elemEnd;
      }
      pos = elemEnd;
    }
    if (untilDelimiter) throw new DeidParseError("item without an item delimiter");
    while (createAt < create.length) {
      const c = create[createAt++]!;
      out.copy(buf, span, end);
      span = end;
      this.create(out, c.tag, c.vr, c.rule, syn);
      out.changed = true;
    }
    out.copy(buf, span, end);
    return end;
  }

  /**
   * The items of a sequence value starting at `start`. When anything inside changes, `out` receives the
   * re-encoded items (without the sequence header and delimiter) and `out.changed` is set. Returns the
   * position after the element (after the sequence delimiter for undefined length).
   */
  private sequence(start: number, length: number, syn: Syntax, depth: number, out: Out): number {
    const { buf, h } = this;
    const undefinedLength = length === UNDEFINED_LENGTH;
    const limit = undefinedLength ? this.end : start + length;
    let pos = start;
    let span = start;
    while (pos < limit) {
      readHeader(buf, pos, limit, syn, h);
      if (h.tag === SEQUENCE_DELIMITER) {
        out.copy(buf, span, pos);
        return h.valueOffset;
      }
      if (h.tag !== ITEM) throw new DeidParseError(`expected a sequence item at byte ${pos}`);
      const itemStart = pos;
      const itemLength = h.length;
      const contentStart = h.valueOffset;
      const sub = new Out();
      let itemEnd: number;
      if (itemLength === UNDEFINED_LENGTH) {
        itemEnd = this.walk(contentStart, limit, syn, depth, sub, true) + 8;
      } else {
        itemEnd = contentStart + itemLength;
        this.walk(contentStart, itemEnd, syn, depth, sub, false);
      }
      if (sub.changed) {
        out.copy(buf, span, itemStart);
        out.push(itemHeader(ITEM, itemLength === UNDEFINED_LENGTH ? UNDEFINED_LENGTH : sub.size, syn));
        out.append(sub);
        if (itemLength === UNDEFINED_LENGTH) out.push(itemHeader(ITEM_DELIMITER, 0, syn));
        out.changed = true;
        span = itemEnd;
      }
      pos = itemEnd;
    }
    if (undefinedLength) throw new DeidParseError("sequence without a sequence delimiter");
    out.copy(buf, span, limit);
    return limit;
  }
}

// ---------------------------------------------------------------------------------------------------
// Entry point

/**
 * De-identify one Part-10 file for a project. Returns the new file (same transfer syntax) and its new
 * UIDs, or `{ dropped }` when a project feature excludes the instance. Throws DeidParseError for input
 * it cannot read, DeidRefusedError when pixel cleaning is needed but impossible (compressed pixels), and
 * DeidError for an invalid context (participant, event, secret).
 */
export function deidentify(input: Uint8Array, ctx: DeidContext): DeidOutcome {
  const { project, profile, participantRe } = prepare(ctx.project);
  if (!PARTICIPANT_RE.test(ctx.participant) || ctx.participant.trim() !== ctx.participant) {
    throw new DeidError("participant must be 1-64 printable ASCII characters without backslash");
  }
  if (participantRe && !participantRe.test(ctx.participant)) {
    throw new DeidError(`participant does not match the project's participant pattern`);
  }
  if (ctx.event !== undefined && !EVENT_RE.test(ctx.event)) {
    throw new DeidError("event must be 1-54 printable ASCII characters without backslash");
  }
  if (ctx.secret === "" && (project.uidMode === "hmac" || project.dateOffsetDays === undefined)) {
    throw new DeidError("a non-empty site secret is required (hmac UIDs or a derived date offset)");
  }
  const ring = keyring(project, ctx.secret);
  const frame = readFrame(input);
  const walk = new Walk(
    frame.dataset,
    frame.syntax,
    profile,
    project,
    ring,
    ctx.secret,
    ctx.participant,
    ctx.event,
  );

  const info = {
    sopClassUid: walk.text(TAG_SOP_CLASS) ?? frame.mediaSopClassUid,
    burnedInAnnotation: walk.text(TAG_BURNED_IN),
    classifyTypes: ctx.classifyTypes,
    manufacturer: walk.text(0x00080070),
    manufacturerModelName: walk.text(0x00081090),
    rows: walk.us(0x00280010),
    columns: walk.us(0x00280011),
  };
  const reason = dropReason(info, project);
  if (reason !== undefined) return { dropped: reason };

  const rects = matchRectangles(info, project);
  const pixels = walk.pixelData();
  if (rects && pixels) {
    if (!NATIVE_SYNTAXES.has(frame.transferSyntaxUid) || pixels[1] < 0) {
      throw new DeidRefusedError(
        `pixel rectangles must be blanked but the pixel data is compressed (transfer syntax ${frame.transferSyntaxUid}); not supported`,
      );
    }
    const numberOfFrames = parseInt(walk.text(0x00280008) ?? "1", 10);
    walk.geometry = {
      rows: info.rows ?? 0,
      columns: info.columns ?? 0,
      samplesPerPixel: walk.us(0x00280002) ?? 1,
      bitsAllocated: walk.us(0x00280100) ?? 0,
      planarConfiguration: walk.us(0x00280006) ?? 0,
      frames: Number.isFinite(numberOfFrames) && numberOfFrames > 0 ? numberOfFrames : 1,
    };
    walk.cleanRects = rects;
  }

  const out = new Out();
  walk.walk(0, frame.dataset.length, frame.syntax, 0, out, false);

  const sopClassUid = info.sopClassUid;
  let sopInstanceUid = walk.newSop;
  if (sopInstanceUid === "" && frame.mediaSopInstanceUid !== "") {
    const uid = frame.mediaSopInstanceUid;
    if (isWellKnownUid(uid)) sopInstanceUid = uid;
    else if (ring.mapper.mode === "hmac") sopInstanceUid = ring.mapper.mapClean(uid);
    else sopInstanceUid = ring.mapper.mapLegacyRaw(uid.length % 2 === 0 ? uid : `${uid}\u0000`);
  }
  if (sopClassUid === "" || sopInstanceUid === "")
    throw new DeidParseError("no SOP Class UID or SOP Instance UID");
  let meta: Buffer;
  try {
    meta = buildPart10Header({ sopClassUid, sopInstanceUid, transferSyntaxUid: frame.transferSyntaxUid });
  } catch {
    throw new DeidParseError("SOP Class UID, SOP Instance UID or transfer syntax is not a UID");
  }
  let bytes: Buffer;
  if (frame.deflated) {
    const body = deflateRawSync(Buffer.concat(out.chunks, out.size));
    bytes = Buffer.concat([meta, body, body.length % 2 === 1 ? Buffer.alloc(1) : EMPTY]);
  } else {
    out.chunks.unshift(meta);
    bytes = Buffer.concat(out.chunks, out.size + meta.length);
  }
  return {
    bytes,
    sopInstanceUid,
    seriesInstanceUid: walk.newSeries,
    studyInstanceUid: walk.newStudy,
    sopClassUid,
    transferSyntaxUid: frame.transferSyntaxUid,
    pixelsCleaned: walk.pixelsCleaned,
  };
}
