/**
 * Hand-encoded DIMSE response PDUs for the hot path. dcmjs-dimse encodes every response command set
 * through dcmjs (denaturalize + DicomMessage.write), which costs about 0.3 ms of CPU and a burst of
 * garbage per C-STORE: more than writing the file. A C-STORE/C-ECHO response is a fixed handful of
 * implicit-VR-little-endian elements (PS3.7 9.3.1.2, 9.3.5.2), so we build the P-DATA-TF directly.
 */

export const COMMAND_FIELD = {
  CStoreRsp: 0x8001,
  CEchoRsp: 0x8030,
} as const;

const NO_DATASET = 0x0101;

function uidElement(element: number, uid: string): Buffer {
  const value = Buffer.from(uid, "latin1");
  const padded = value.length % 2 === 0 ? value.length : value.length + 1;
  const b = Buffer.alloc(8 + padded); // zero fill pads UIDs with NUL
  b.writeUInt16LE(0x0000, 0);
  b.writeUInt16LE(element, 2);
  b.writeUInt32LE(padded, 4);
  value.copy(b, 8);
  return b;
}

function textElement(element: number, text: string): Buffer {
  const value = Buffer.from(text.replace(/[^\x20-\x5b\x5d-\x7e]/g, "?"), "latin1");
  const padded = value.length % 2 === 0 ? value.length : value.length + 1;
  const b = Buffer.alloc(8 + padded, 0x20); // space-pad LO
  b.writeUInt16LE(0x0000, 0);
  b.writeUInt16LE(element, 2);
  b.writeUInt32LE(padded, 4);
  value.copy(b, 8);
  return b;
}

function usElement(element: number, value: number): Buffer {
  const b = Buffer.alloc(10);
  b.writeUInt16LE(0x0000, 0);
  b.writeUInt16LE(element, 2);
  b.writeUInt32LE(2, 4);
  b.writeUInt16LE(value & 0xffff, 8);
  return b;
}

export interface ResponseFields {
  presentationContextId: number;
  commandField: number;
  messageIdBeingRespondedTo: number;
  affectedSopClassUid: string;
  affectedSopInstanceUid?: string;
  status: number;
  /** Error Comment (0000,0902), LO: trimmed to 64 characters. */
  errorComment?: string;
}

/** The complete P-DATA-TF PDU carrying one response command set in a single last-fragment PDV. */
export function encodeResponsePdu(f: ResponseFields): Buffer {
  const elements: Buffer[] = [
    uidElement(0x0002, f.affectedSopClassUid),
    usElement(0x0100, f.commandField),
    usElement(0x0120, f.messageIdBeingRespondedTo),
    usElement(0x0800, NO_DATASET),
    usElement(0x0900, f.status),
  ];
  if (f.errorComment !== undefined && f.errorComment !== "") {
    elements.push(textElement(0x0902, f.errorComment.slice(0, 64)));
  }
  if (f.affectedSopInstanceUid !== undefined && f.affectedSopInstanceUid !== "") {
    elements.push(uidElement(0x1000, f.affectedSopInstanceUid));
  }
  const bodyLength = elements.reduce((n, b) => n + b.length, 0);
  const commandLength = 12 + bodyLength; // (0000,0000) UL element + the rest
  const pdvItemLength = 2 + commandLength; // context id + message control header + command set
  const pduLength = 4 + pdvItemLength;
  const pdu = Buffer.alloc(6 + pduLength);
  let o = 0;
  pdu.writeUInt8(0x04, o); // P-DATA-TF
  pdu.writeUInt8(0x00, o + 1);
  pdu.writeUInt32BE(pduLength, o + 2);
  o += 6;
  pdu.writeUInt32BE(pdvItemLength, o);
  pdu.writeUInt8(f.presentationContextId & 0xff, o + 4);
  pdu.writeUInt8(0x03, o + 5); // command, last fragment
  o += 6;
  pdu.writeUInt16LE(0x0000, o);
  pdu.writeUInt16LE(0x0000, o + 2);
  pdu.writeUInt32LE(4, o + 4);
  pdu.writeUInt32LE(bodyLength, o + 8);
  o += 12;
  for (const b of elements) {
    b.copy(pdu, o);
    o += b.length;
  }
  return pdu;
}
