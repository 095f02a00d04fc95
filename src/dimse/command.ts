/**
 * DIMSE command sets (group 0000), always implicit VR little endian (PS3.7 section 6.3.1, 9.3.1).
 */

export const COMMAND_FIELD = { C_STORE_RQ: 0x0001, C_STORE_RSP: 0x8001 } as const;

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

/** UI values are padded with NUL, AE (and other text) with a space, to even length. */
function padded(value: string, pad: number): Buffer {
  const length = value.length + (value.length % 2);
  const b = Buffer.alloc(length, pad);
  b.write(value, 0, "latin1");
  return b;
}

/** Encode a C-STORE-RQ command set, group length first, elements in tag order. */
export function encodeCStoreRq(rq: CStoreRq): Buffer {
  const sopClass = padded(rq.sopClassUid, 0);
  const sopInstance = padded(rq.sopInstanceUid, 0);
  const originator = rq.moveOriginator ? padded(rq.moveOriginator.aeTitle, 0x20) : undefined;
  // Each element: tag (4) + length (4) + value.
  let body = 8 + sopClass.length + 4 * (8 + 2) + 8 + sopInstance.length;
  if (originator) body += 8 + originator.length + 8 + 2;
  const b = Buffer.allocUnsafe(12 + body);
  let at = 0;
  const head = (element: number, length: number): void => {
    b.writeUInt16LE(0x0000, at);
    b.writeUInt16LE(element, at + 2);
    b.writeUInt32LE(length, at + 4);
    at += 8;
  };
  const us = (element: number, value: number): void => {
    head(element, 2);
    b.writeUInt16LE(value, at);
    at += 2;
  };
  const bytes = (element: number, value: Buffer): void => {
    head(element, value.length);
    value.copy(b, at);
    at += value.length;
  };
  head(0x0000, 4);
  b.writeUInt32LE(body, at);
  at += 4;
  bytes(0x0002, sopClass); // AffectedSOPClassUID
  us(0x0100, COMMAND_FIELD.C_STORE_RQ); // CommandField
  us(0x0110, rq.messageId); // MessageID
  us(0x0700, rq.priority ?? 0); // Priority
  us(0x0800, 0x0000); // CommandDataSetType: a dataset follows
  bytes(0x1000, sopInstance); // AffectedSOPInstanceUID
  if (rq.moveOriginator && originator) {
    bytes(0x1030, originator); // MoveOriginatorApplicationEntityTitle
    us(0x1031, rq.moveOriginator.messageId); // MoveOriginatorMessageID
  }
  return b;
}

/** A parsed command set: element number (group 0000) -> raw value bytes. */
export class CommandSet {
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
