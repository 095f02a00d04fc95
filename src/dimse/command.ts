/**
 * DIMSE command sets (group 0000), always implicit VR little endian (PS3.7 section 6.3.1, 9.3.1):
 * the requests and responses FIONA's own SCUs and SCP exchange, hand-encoded (a command set is a fixed
 * handful of elements; encoding through a generic dataset writer costs more than storing the file).
 */
import { PDU_TYPE } from "./pdu.js";

export const COMMAND_FIELD = {
  C_STORE_RQ: 0x0001,
  C_STORE_RSP: 0x8001,
  C_ECHO_RQ: 0x0030,
  C_ECHO_RSP: 0x8030,
  C_CANCEL_RQ: 0x0fff,
} as const;

/** A response's command field is its request's with this bit set. */
export const RESPONSE_BIT = 0x8000;

export const VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1";

/** CommandDataSetType value meaning "no dataset" (anything else: a dataset follows). */
export const NO_DATASET = 0x0101;

export interface CStoreRq {
  sopClassUid: string;
  sopInstanceUid: string;
  messageId: number;
  /** 0 medium (default), 1 high, 2 low. */
  priority?: number;
  /** For C-STORE sub-operations of a C-MOVE. */
  moveOriginator?: { aeTitle: string; messageId: number };
}

/** UI values are padded with NUL, AE and LO with a space, to even length. */
function padded(value: string, pad: number): Buffer {
  const length = value.length + (value.length % 2);
  const b = Buffer.alloc(length, pad);
  b.write(value, 0, "latin1");
  return b;
}

/** Element values of a command set, in tag order; numbers are US. */
type Elements = Array<[element: number, value: number | Buffer]>;

/** Encode a command set: group length first, then the elements as given (callers keep tag order). */
function encodeCommand(elements: Elements): Buffer {
  let body = 0;
  for (const [, v] of elements) body += 8 + (typeof v === "number" ? 2 : v.length);
  const b = Buffer.allocUnsafe(12 + body);
  b.writeUInt32LE(0x00000000, 0); // (0000,0000) CommandGroupLength
  b.writeUInt32LE(4, 4);
  b.writeUInt32LE(body, 8);
  let at = 12;
  for (const [element, v] of elements) {
    b.writeUInt16LE(0x0000, at);
    b.writeUInt16LE(element, at + 2);
    if (typeof v === "number") {
      b.writeUInt32LE(2, at + 4);
      b.writeUInt16LE(v & 0xffff, at + 8);
      at += 10;
    } else {
      b.writeUInt32LE(v.length, at + 4);
      v.copy(b, at + 8);
      at += 8 + v.length;
    }
  }
  return b;
}

/** Encode a C-STORE-RQ command set. */
export function encodeCStoreRq(rq: CStoreRq): Buffer {
  const elements: Elements = [
    [0x0002, padded(rq.sopClassUid, 0)], // AffectedSOPClassUID
    [0x0100, COMMAND_FIELD.C_STORE_RQ], // CommandField
    [0x0110, rq.messageId], // MessageID
    [0x0700, rq.priority ?? 0], // Priority
    [0x0800, 0x0000], // CommandDataSetType: a dataset follows
    [0x1000, padded(rq.sopInstanceUid, 0)], // AffectedSOPInstanceUID
  ];
  if (rq.moveOriginator) {
    elements.push([0x1030, padded(rq.moveOriginator.aeTitle, 0x20)]); // MoveOriginatorApplicationEntityTitle
    elements.push([0x1031, rq.moveOriginator.messageId]); // MoveOriginatorMessageID
  }
  return encodeCommand(elements);
}

/** Encode a C-ECHO-RQ command set. */
export function encodeCEchoRq(messageId: number): Buffer {
  return encodeCommand([
    [0x0002, padded(VERIFICATION_SOP_CLASS, 0)],
    [0x0100, COMMAND_FIELD.C_ECHO_RQ],
    [0x0110, messageId],
    [0x0800, NO_DATASET],
  ]);
}

export interface ResponseFields {
  commandField: number;
  messageIdBeingRespondedTo: number;
  affectedSopClassUid: string;
  affectedSopInstanceUid?: string;
  status: number;
  /** Error Comment (0000,0902), LO: cut to 64 characters of printable text. */
  errorComment?: string;
}

/** Encode a response command set without a dataset (C-STORE-RSP, C-ECHO-RSP, refusals). */
export function encodeResponse(f: ResponseFields): Buffer {
  const elements: Elements = [
    [0x0002, padded(f.affectedSopClassUid, 0)],
    [0x0100, f.commandField],
    [0x0120, f.messageIdBeingRespondedTo],
    [0x0800, NO_DATASET],
    [0x0900, f.status],
  ];
  if (f.errorComment) {
    elements.push([0x0902, padded(f.errorComment.replace(/[^\x20-\x5b\x5d-\x7e]/g, "?").slice(0, 64), 0x20)]);
  }
  if (f.affectedSopInstanceUid) elements.push([0x1000, padded(f.affectedSopInstanceUid, 0)]);
  return encodeCommand(elements);
}

/** A command set as one P-DATA-TF PDU with one last-fragment command PDV (command sets are small). */
export function commandPdu(presentationContextId: number, command: Buffer): Buffer {
  const pdu = Buffer.allocUnsafe(12 + command.length);
  pdu[0] = PDU_TYPE.P_DATA_TF;
  pdu[1] = 0;
  pdu.writeUInt32BE(6 + command.length, 2);
  pdu.writeUInt32BE(2 + command.length, 6);
  pdu[10] = presentationContextId;
  pdu[11] = 0x03; // command, last fragment
  command.copy(pdu, 12);
  return pdu;
}

/** A parsed command set: element number (group 0000) -> raw value bytes. */
class CommandSet {
  constructor(private readonly elements: Map<number, Buffer>) {}

  us(element: number): number | undefined {
    const v = this.elements.get(element);
    return v && v.length >= 2 ? v.readUInt16LE(0) : undefined;
  }

  text(element: number): string | undefined {
    const v = this.elements.get(element);
    return v ? v.toString("latin1").replace(/[\0 ]+$/, "") : undefined;
  }

  /** AT values as "(gggg,eeee)". */
  tags(element: number): string[] {
    const v = this.elements.get(element);
    const out: string[] = [];
    for (let at = 0; v && at + 4 <= v.length; at += 4) {
      const hex = (n: number): string => n.toString(16).toUpperCase().padStart(4, "0");
      out.push(`(${hex(v.readUInt16LE(at))},${hex(v.readUInt16LE(at + 2))})`);
    }
    return out;
  }
}

/** Parse an implicit VR little endian command set. Throws on a truncated element or a non-0000 group. */
export function parseCommand(b: Buffer): CommandSet {
  const elements = new Map<number, Buffer>();
  let at = 0;
  while (at + 8 <= b.length) {
    const group = b.readUInt16LE(at);
    const element = b.readUInt16LE(at + 2);
    const length = b.readUInt32LE(at + 4);
    if (group !== 0x0000) throw new Error(`command set holds group ${group.toString(16).padStart(4, "0")}`);
    if (at + 8 + length > b.length) throw new Error("command set element extends past its end");
    elements.set(element, b.subarray(at + 8, at + 8 + length));
    at += 8 + length;
  }
  return new CommandSet(elements);
}
