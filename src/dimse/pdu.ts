/**
 * DICOM Upper Layer PDUs (PS3.8 section 9.3) for an association requestor: encode A-ASSOCIATE-RQ,
 * A-RELEASE-RQ/RP, A-ABORT and P-DATA-TF headers; decode A-ASSOCIATE-AC/RJ, A-ABORT and P-DATA-TF.
 * Every PDU starts with type (1 byte), reserved (1 byte) and a big-endian 4-byte length of the rest.
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
export const APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1";

/** PDU header (6) + PDV item length (4) + presentation context ID (1) + message control header (1). */
export const PDV_OVERHEAD = 12;

/** A malformed or unexpected PDU from the peer. The message never contains dataset content. */
export class PduError extends Error {
  override name = "PduError";
}

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
  const maxLength = Buffer.alloc(4);
  maxLength.writeUInt32BE(rq.maxPduLength, 0);
  const user = [item(0x51, maxLength), item(0x52, ascii(rq.implementationClassUid))];
  if (rq.implementationVersionName) user.push(item(0x55, ascii(rq.implementationVersionName.slice(0, 16))));
  items.push(item(0x50, Buffer.concat(user)));
  return pdu(PDU_TYPE.ASSOCIATE_RQ, Buffer.concat(items));
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

/** A-ABORT from the service user (source 0): reason is not significant. */
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

/** One PDV inside a P-DATA-TF PDU; `data` is a view into the PDU. */
export interface Pdv {
  contextId: number;
  command: boolean;
  last: boolean;
  data: Buffer;
}

export function parsePData(p: Buffer): Pdv[] {
  const out: Pdv[] = [];
  let at = 6;
  while (at + 6 <= p.length) {
    const length = p.readUInt32BE(at);
    if (length < 2 || at + 4 + length > p.length) throw new PduError("PDV item extends past its PDU");
    const control = p[at + 5]!;
    out.push({
      contextId: p[at + 4]!,
      command: (control & 1) === 1,
      last: (control & 2) === 2,
      data: p.subarray(at + 6, at + 4 + length),
    });
    at += 4 + length;
  }
  return out;
}

/**
 * Cuts a TCP byte stream into PDUs. Keeps the chunks and copies a PDU only when it spans chunks.
 */
export class PduReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxPduLength: number) {}

  /** Add received bytes; returns the PDUs (header included) they complete. Throws PduError. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= 6) {
      const head = this.peek6();
      const type = head[0]!;
      if (type < 0x01 || type > 0x07) throw new PduError(`unknown PDU type 0x${type.toString(16)}`);
      const length = head.readUInt32BE(2);
      if (length > this.maxPduLength) throw new PduError(`PDU of ${length} bytes exceeds the limit`);
      if (this.buffered < 6 + length) break;
      out.push(this.take(6 + length));
    }
    return out;
  }

  private peek6(): Buffer {
    const first = this.chunks[0]!;
    return first.length >= 6 ? first : Buffer.concat(this.chunks).subarray(0, 6);
  }

  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const all = Buffer.concat(this.chunks);
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    return all.subarray(0, n);
  }
}
