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
import { deflateRawSync } from "node:zlib";
import { buildPart10Header } from "../dicom/part10.js";
import { isNativeTransferSyntax } from "../dicom/transfer-syntax.js";
import { DeidError, DeidParseError, DeidRefusedError } from "./errors.js";
import { readFrame } from "./frame.js";
import { Out } from "./output.js";
import { dropReason, matchRectangles } from "./pixels.js";
import { keyring, prepare } from "./prepared.js";
import type { ProjectDeid, ProjectDeidInput } from "./project.js";
import { TopLevelScan } from "./scan.js";
import { isWellKnownUid } from "./uid.js";
import { EMPTY, ElementValues } from "./values.js";
import { TAG_BURNED_IN, TAG_SOP_CLASS, Walk } from "./walk.js";

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

const PARTICIPANT_RE = /^[\x20-\x5b\x5d-\x7e]{1,64}$/;
const EVENT_RE = /^[\x20-\x5b\x5d-\x7e]{1,54}$/;

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
  const scan = new TopLevelScan(frame.dataset, frame.syntax);
  const values = new ElementValues(
    frame.dataset,
    scan,
    profile,
    project,
    ring,
    ctx.secret,
    ctx.participant,
    ctx.event,
  );
  const walk = new Walk(frame.dataset, scan, values);

  const info = {
    sopClassUid: scan.text(TAG_SOP_CLASS) ?? frame.mediaSopClassUid,
    burnedInAnnotation: scan.text(TAG_BURNED_IN),
    classifyTypes: ctx.classifyTypes,
    manufacturer: scan.text(0x00080070),
    manufacturerModelName: scan.text(0x00081090),
    rows: scan.us(0x00280010),
    columns: scan.us(0x00280011),
  };
  const reason = dropReason(info, project);
  if (reason !== undefined) return { dropped: reason };

  const rects = matchRectangles(info, project);
  const pixels = scan.pixelData();
  if (rects && pixels) {
    if (!isNativeTransferSyntax(frame.transferSyntaxUid) || pixels[1] < 0) {
      throw new DeidRefusedError(
        `pixel rectangles must be blanked but the pixel data is compressed (transfer syntax ${frame.transferSyntaxUid}); not supported`,
      );
    }
    const numberOfFrames = parseInt(scan.text(0x00280008) ?? "1", 10);
    walk.geometry = {
      rows: info.rows ?? 0,
      columns: info.columns ?? 0,
      samplesPerPixel: scan.us(0x00280002) ?? 1,
      bitsAllocated: scan.us(0x00280100) ?? 0,
      planarConfiguration: scan.us(0x00280006) ?? 0,
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
