/**
 * DICOM Upper Layer PDUs (PS3.8 section 9.3), both sides: encode and decode A-ASSOCIATE-RQ/AC/RJ,
 * A-RELEASE-RQ/RP and A-ABORT (P-DATA-TF is read by pdu-stream.ts and written by the callers, which
 * send dataset bytes without copying them). Every PDU starts with type (1 byte), reserved (1 byte)
 * and a big-endian 4-byte length of the rest. Decoders check every length before reading.
 */

export const PDU_TYPE = {
  ASSOCIATE_RQ: 0x01,
  ASSOCIATE_AC: 0x02,
  ASSOCIATE_RJ: 0x03,
  P_DATA_TF: 0x04,
  RELEASE_RQ: 0x05,
  RELEASE_RP: 0x06,
  ABORT: 0x07,
} as const;

/** DICOM Application Context Name. */
const APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1";

/** A-ABORT reasons of a service-provider abort (PS3.8 table 9-26). */
export const ABORT_REASON = {
  NOT_SPECIFIED: 0,
  UNRECOGNIZED_PDU: 1,
  UNEXPECTED_PDU: 2,
  UNRECOGNIZED_PARAMETER: 4,
  UNEXPECTED_PARAMETER: 5,
  INVALID_PARAMETER: 6,
} as const;

/**
 * A malformed or unexpected PDU from the peer: the association is aborted with `abortReason`.
 * The message never contains dataset content.
 */
export class PduError extends Error {
  override name = "PduError";
  constructor(
    message: string,
    readonly abortReason: number = ABORT_REASON.INVALID_PARAMETER,
  ) {
    super(message);
  }
}

/** A-ASSOCIATE-RQ larger than this is refused unread (user identity fields are the only large part). */
export const MAX_ASSOCIATE_RQ_BYTES = 128 * 1024;

/** PS3.8: presentation context IDs are odd numbers 1-255, so at most 128 per association. */
export const MAX_CONTEXTS = 128;

/** A-ASSOCIATE-RJ fields (PS3.8 table 9-21). */
export const REJECT = {
  PERMANENT: 1,
  TRANSIENT: 2,
  SOURCE_USER: 1,
  SOURCE_ACSE: 2,
  SOURCE_PRESENTATION: 3,
  /** Reasons by source: user 1 no reason, 2 context, 3 calling AE, 7 called AE; ACSE 2 version; presentation 2 local limit. */
  USER_NO_REASON: 1,
  USER_APPLICATION_CONTEXT: 2,
  USER_CALLING_AE: 3,
  USER_CALLED_AE: 7,
  ACSE_PROTOCOL_VERSION: 2,
  PRESENTATION_LOCAL_LIMIT: 2,
} as const;

export interface ProposedContext {
  /** Odd, 1-255. */
  id: number;
  abstractSyntax: string;
  transferSyntaxes: string[];
}

export interface AssociateRequest {
  calledAe: string;
  callingAe: string;
  contexts: ProposedContext[];
  /** Largest P-DATA-TF PDU (variable part) we accept. */
  maxPduLength: number;
  implementationClassUid: string;
  implementationVersionName?: string;
}

function item(type: number, body: Buffer): Buffer {
  if (body.length > 0xffff) throw new PduError(`item 0x${type.toString(16)} too long`);
  const head = Buffer.alloc(4);
  head[0] = type;
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([head, body]);
}

/** UIDs in PDU items are not padded (PS3.8 9.3.2.2.1; trailing NUL is tolerated on reading). */
function ascii(text: string): Buffer {
  return Buffer.from(text, "latin1");
}

/** An AE title field: 16 bytes, space padded. */
function aeField(ae: string): Buffer {
  const b = Buffer.alloc(16, 0x20);
  b.write(ae, 0, 16, "latin1");
  return b;
}

export function encodeAssociateRq(rq: AssociateRequest): Buffer {
  const fixed = Buffer.alloc(68);
  fixed.writeUInt16BE(0x0001, 0); // protocol version
  aeField(rq.calledAe).copy(fixed, 4);
  aeField(rq.callingAe).copy(fixed, 20);
  const items: Buffer[] = [fixed, item(0x10, ascii(APPLICATION_CONTEXT))];
  for (const pc of rq.contexts) {
    const head = Buffer.from([pc.id, 0, 0, 0]);
    const subs = [
      item(0x30, ascii(pc.abstractSyntax)),
      ...pc.transferSyntaxes.map((ts) => item(0x40, ascii(ts))),
    ];
    items.push(item(0x20, Buffer.concat([head, ...subs])));
  }
  items.push(
    item(0x50, userInformation(rq.maxPduLength, rq.implementationClassUid, rq.implementationVersionName)),
  );
  return pdu(PDU_TYPE.ASSOCIATE_RQ, Buffer.concat(items));
}

function userInformation(maxPduLength: number, classUid: string, versionName: string | undefined): Buffer {
  const maxLength = Buffer.alloc(4);
  maxLength.writeUInt32BE(maxPduLength, 0);
  const user = [item(0x51, maxLength), item(0x52, ascii(classUid))];
  if (versionName) user.push(item(0x55, ascii(versionName.slice(0, 16))));
  return Buffer.concat(user);
}

function pdu(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(6);
  head[0] = type;
  head.writeUInt32BE(body.length, 2);
  return Buffer.concat([head, body]);
}

export function encodeReleaseRq(): Buffer {
  return pdu(PDU_TYPE.RELEASE_RQ, Buffer.alloc(4));
}

export function encodeReleaseRp(): Buffer {
  return pdu(PDU_TYPE.RELEASE_RP, Buffer.alloc(4));
}

/** A-ABORT; source 0 service-user (reason not significant), 2 service-provider (ABORT_REASON). */
export function encodeAbort(source = 0, reason = 0): Buffer {
  return pdu(PDU_TYPE.ABORT, Buffer.from([0, 0, source, reason]));
}

export interface AcceptedContext {
  id: number;
  /** 0 acceptance, 1 user-rejection, 2 no-reason (provider rejection), 3 abstract syntax not supported, 4 transfer syntaxes not supported. */
  result: number;
  /** Accepted transfer syntax (meaningless unless result is 0). */
  transferSyntax: string;
}

export interface AssociateAccept {
  contexts: AcceptedContext[];
  /** Peer's maximum PDU length for what we send; 0 means no limit. */
  maxPduLength: number;
  implementationClassUid?: string;
  implementationVersionName?: string;
}

function readText(b: Buffer, start: number, end: number): string {
  return b.toString("latin1", start, end).replace(/[\0 ]+$/, "");
}

/** Parse an A-ASSOCIATE-AC PDU (header included). */
export function parseAssociateAc(p: Buffer): AssociateAccept {
  if (p.length < 74) throw new PduError("A-ASSOCIATE-AC too short");
  const out: AssociateAccept = { contexts: [], maxPduLength: 0 };
  forEachItem(p, 74, p.length, (type, start, end) => {
    if (type === 0x21) {
      if (end - start < 4) throw new PduError("presentation context item too short");
      let transferSyntax = "";
      forEachItem(p, start + 4, end, (subType, s, e) => {
        if (subType === 0x40) transferSyntax = readText(p, s, e);
      });
      out.contexts.push({ id: p[start]!, result: p[start + 2]!, transferSyntax });
    } else if (type === 0x50) {
      forEachItem(p, start, end, (subType, s, e) => {
        if (subType === 0x51 && e - s >= 4) out.maxPduLength = p.readUInt32BE(s);
        else if (subType === 0x52) out.implementationClassUid = readText(p, s, e);
        else if (subType === 0x55) out.implementationVersionName = readText(p, s, e);
      });
    }
  });
  return out;
}

function forEachItem(
  b: Buffer,
  from: number,
  to: number,
  fn: (type: number, start: number, end: number) => void,
): void {
  let at = from;
  while (at + 4 <= to) {
    const type = b[at]!;
    const length = b.readUInt16BE(at + 2);
    const end = at + 4 + length;
    if (end > to) throw new PduError(`item 0x${type.toString(16)} extends past its PDU`);
    fn(type, at + 4, end);
    at = end;
  }
}

export interface AssociateReject {
  /** 1 rejected-permanent, 2 rejected-transient. */
  result: number;
  /** 1 service-user, 2 service-provider (ACSE), 3 service-provider (presentation). */
  source: number;
  reason: number;
}

export function parseAssociateRj(p: Buffer): AssociateReject {
  if (p.length < 10) throw new PduError("A-ASSOCIATE-RJ too short");
  return { result: p[7]!, source: p[8]!, reason: p[9]! };
}

export function describeReject(rj: AssociateReject): string {
  const result = rj.result === 1 ? "permanent" : rj.result === 2 ? "transient" : `result ${rj.result}`;
  const sources: Record<number, [string, Record<number, string>]> = {
    1: [
      "service-user",
      {
        1: "no reason given",
        2: "application context name not supported",
        3: "calling AE title not recognized",
        7: "called AE title not recognized",
      },
    ],
    2: ["service-provider (ACSE)", { 1: "no reason given", 2: "protocol version not supported" }],
    3: ["service-provider (presentation)", { 1: "temporary congestion", 2: "local limit exceeded" }],
  };
  const [source, reasons] = sources[rj.source] ?? [`source ${rj.source}`, {}];
  return `${result}, ${source}: ${reasons[rj.reason] ?? `reason ${rj.reason}`}`;
}

export interface Abort {
  /** 0 service-user, 2 service-provider. */
  source: number;
  reason: number;
}

export function parseAbort(p: Buffer): Abort {
  return { source: p[8] ?? 0, reason: p[9] ?? 0 };
}

export function describeAbort(a: Abort): string {
  if (a.source === 0) return "aborted by the peer (service-user)";
  const reasons: Record<number, string> = {
    0: "reason not specified",
    1: "unrecognized PDU",
    2: "unexpected PDU",
    4: "unrecognized PDU parameter",
    5: "unexpected PDU parameter",
    6: "invalid PDU parameter value",
  };
  return `aborted by the peer (service-provider: ${reasons[a.reason] ?? `reason ${a.reason}`})`;
}

export const PC_RESULT: Record<number, string> = {
  0: "accepted",
  1: "user rejection",
  2: "provider rejection (no reason)",
  3: "abstract syntax (SOP class) not supported",
  4: "transfer syntax not supported",
};

// ---------------------------------------------------------------- acceptor side

/** A well-formed A-ASSOCIATE-RQ the acceptor must still refuse: answer with A-ASSOCIATE-RJ. */
export class AssociateRejection extends Error {
  override name = "AssociateRejection";
  constructor(
    message: string,
    readonly reject: AssociateReject,
  ) {
    super(message);
  }
}

export interface ReceivedAssociateRq {
  calledAe: string;
  callingAe: string;
  contexts: ProposedContext[];
  /** The requestor's maximum P-DATA-TF length for what we send; 0 means no limit. */
  maxPduLength: number;
  implementationClassUid: string;
  implementationVersionName?: string;
}

const AE_TEXT = /^[\x20-\x5b\x5d-\x7e]{1,16}$/;
const MAX_UID_FIELD = 64;

function permanent(source: number, reason: number, message: string): AssociateRejection {
  return new AssociateRejection(message, { result: REJECT.PERMANENT, source, reason });
}

/** The AE titles of an A-ASSOCIATE-RQ as far as it has them, printable only (for logging a refusal). */
export function peekAeTitles(p: Buffer): { calledAe: string; callingAe: string } {
  const field = (from: number) =>
    p
      .toString("latin1", Math.min(from, p.length), Math.min(from + 16, p.length))
      .replace(/[^\x20-\x7e]/g, "?")
      .trim();
  return { calledAe: field(10), callingAe: field(26) };
}

/**
 * Parse and validate an A-ASSOCIATE-RQ (header included). Throws PduError when it cannot be read
 * (A-ABORT) and AssociateRejection when it can be read but must be refused (A-ASSOCIATE-RJ).
 */
export function parseAssociateRq(p: Buffer): ReceivedAssociateRq {
  if (p.length < 74) throw new PduError("A-ASSOCIATE-RQ shorter than its fixed fields");
  if (p.readUInt32BE(2) !== p.length - 6) throw new PduError("A-ASSOCIATE-RQ length does not match");
  const out: ReceivedAssociateRq = {
    calledAe: p.toString("latin1", 10, 26).trim(),
    callingAe: p.toString("latin1", 26, 42).trim(),
    contexts: [],
    maxPduLength: 0,
    implementationClassUid: "",
  };
  let applicationContext: string | undefined;
  const ids = new Set<number>();
  forEachItem(p, 74, p.length, (type, start, end) => {
    if (type === 0x10) applicationContext = readText(p, start, end);
    else if (type === 0x20) {
      if (ids.size >= MAX_CONTEXTS)
        throw permanent(
          REJECT.SOURCE_USER,
          REJECT.USER_NO_REASON,
          `more than ${MAX_CONTEXTS} presentation contexts`,
        );
      if (end - start < 4) throw new PduError("presentation context item too short");
      const id = p[start]!;
      if (id % 2 === 0 || ids.has(id))
        throw permanent(
          REJECT.SOURCE_USER,
          REJECT.USER_NO_REASON,
          `presentation context id ${id} is even or repeated`,
        );
      ids.add(id);
      const pc: ProposedContext = { id, abstractSyntax: "", transferSyntaxes: [] };
      forEachItem(p, start + 4, end, (subType, s, e) => {
        if (e - s > MAX_UID_FIELD) throw new PduError("syntax name longer than a UID");
        if (subType === 0x30) pc.abstractSyntax = readText(p, s, e);
        else if (subType === 0x40) pc.transferSyntaxes.push(readText(p, s, e));
      });
      out.contexts.push(pc);
    } else if (type === 0x50) {
      forEachItem(p, start, end, (subType, s, e) => {
        if (subType === 0x51) {
          if (e - s !== 4) throw new PduError("maximum length item is not 4 bytes");
          out.maxPduLength = p.readUInt32BE(s);
        } else if (subType === 0x52) out.implementationClassUid = readText(p, s, e);
        else if (subType === 0x55) out.implementationVersionName = readText(p, s, e);
      });
    }
  });
  if ((p.readUInt16BE(6) & 1) === 0)
    throw permanent(REJECT.SOURCE_ACSE, REJECT.ACSE_PROTOCOL_VERSION, "protocol version not supported");
  if (applicationContext !== APPLICATION_CONTEXT)
    throw permanent(REJECT.SOURCE_USER, REJECT.USER_APPLICATION_CONTEXT, "application context not supported");
  if (!AE_TEXT.test(out.callingAe))
    throw permanent(REJECT.SOURCE_USER, REJECT.USER_CALLING_AE, "calling AE title is not valid");
  if (!AE_TEXT.test(out.calledAe))
    throw permanent(REJECT.SOURCE_USER, REJECT.USER_CALLED_AE, "called AE title is not valid");
  if (out.contexts.length === 0)
    throw permanent(REJECT.SOURCE_USER, REJECT.USER_NO_REASON, "no presentation context proposed");
  return out;
}

export interface AcceptResult {
  id: number;
  result: number;
  /** The accepted transfer syntax; for a rejected context, any (it is not significant). */
  transferSyntax: string;
}

export interface AssociateAcFields {
  /** Returned as received (PS3.8 9.3.3.2). */
  calledAe: string;
  callingAe: string;
  contexts: AcceptResult[];
  /** Largest P-DATA-TF PDU (variable part) we accept. */
  maxPduLength: number;
  implementationClassUid: string;
  implementationVersionName?: string;
}

export function encodeAssociateAc(ac: AssociateAcFields): Buffer {
  const fixed = Buffer.alloc(68);
  fixed.writeUInt16BE(0x0001, 0);
  aeField(ac.calledAe).copy(fixed, 4);
  aeField(ac.callingAe).copy(fixed, 20);
  const items: Buffer[] = [fixed, item(0x10, ascii(APPLICATION_CONTEXT))];
  for (const pc of ac.contexts) {
    items.push(
      item(
        0x21,
        Buffer.concat([Buffer.from([pc.id, 0, pc.result, 0]), item(0x40, ascii(pc.transferSyntax))]),
      ),
    );
  }
  items.push(
    item(0x50, userInformation(ac.maxPduLength, ac.implementationClassUid, ac.implementationVersionName)),
  );
  return pdu(PDU_TYPE.ASSOCIATE_AC, Buffer.concat(items));
}

export function encodeAssociateRj(rj: AssociateReject): Buffer {
  return pdu(PDU_TYPE.ASSOCIATE_RJ, Buffer.from([0, rj.result, rj.source, rj.reason]));
}
