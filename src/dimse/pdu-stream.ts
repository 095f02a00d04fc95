/**
 * Streaming reader for the DICOM Upper Layer byte stream (PS3.8 9.3), used by the receiver and by the
 * SCUs in this folder.
 *
 * P-DATA-TF PDUs are never assembled: their PDV item headers are read as they arrive and PDV values
 * are handed to the sink as slices of the socket chunks (no copy), so a dataset of any size is copied
 * once, by whoever keeps it. Other PDUs (association, release, abort) are small and are assembled
 * whole. Every length is checked against its container before anything is read; a violation throws
 * {@link PduError} and the caller aborts the association.
 */
import { ABORT_REASON, PduError, PDU_TYPE } from "./pdu.js";

export interface PduSink {
  /** A PDV item starts; `length` is the number of value bytes that follow. */
  pdvBegin(presentationContextId: number, isCommand: boolean, isLast: boolean, length: number): void;
  /** Value bytes of the current PDV (a view into a socket chunk: copy it if you keep it). */
  pdvData(bytes: Buffer): void;
  pdvEnd(): void;
  /** A complete non-P-DATA PDU (header included). */
  otherPdu(pdu: Buffer): void;
}

const P_DATA_TF = PDU_TYPE.P_DATA_TF;
const OTHER_TYPES = new Set<number>([0x01, 0x02, 0x03, 0x05, 0x06, 0x07]);

type State = "pduHeader" | "pdvHeader" | "pdvValue" | "otherPdu";

export class PduStream {
  private state: State = "pduHeader";
  private readonly header = Buffer.alloc(6);
  private headerFill = 0;
  private pduRemaining = 0;
  private pdvRemaining = 0;
  private other: { parts: Buffer[]; remaining: number; total: number } | undefined;

  /**
   * @param sink receives the PDVs and other PDUs, synchronously and in order
   * @param maxPduLength largest acceptable PDU body: bigger ones are a protocol error
   * @param maxOtherPduLength largest acceptable non-P-DATA PDU body (association requests may carry
   *   long user-identity fields)
   */
  constructor(
    private readonly sink: PduSink,
    private readonly maxPduLength: number,
    private readonly maxOtherPduLength: number,
  ) {}

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      switch (this.state) {
        case "pduHeader": {
          pos = this.fillHeader(chunk, pos);
          if (this.headerFill < 6) return;
          this.headerFill = 0;
          const type = this.header[0] as number;
          const length = this.header.readUInt32BE(2);
          if (type === P_DATA_TF) {
            if (length > this.maxPduLength)
              throw new PduError(`P-DATA-TF of ${length} bytes exceeds the limit`);
            if (length < 6) throw new PduError("P-DATA-TF without a PDV item");
            this.pduRemaining = length;
            this.state = "pdvHeader";
          } else if (OTHER_TYPES.has(type)) {
            if (length > this.maxOtherPduLength)
              throw new PduError(`PDU of ${length} bytes exceeds the limit`);
            this.other = { parts: [Buffer.from(this.header)], remaining: length, total: 6 + length };
            this.state = "otherPdu";
            if (length === 0) this.finishOther();
          } else {
            throw new PduError(`unknown PDU type 0x${type.toString(16)}`, ABORT_REASON.UNRECOGNIZED_PDU);
          }
          break;
        }
        case "pdvHeader": {
          pos = this.fillHeader(chunk, pos);
          if (this.headerFill < 6) return;
          this.headerFill = 0;
          const itemLength = this.header.readUInt32BE(0);
          if (itemLength < 2 || 4 + itemLength > this.pduRemaining) {
            throw new PduError("PDV item length does not fit its PDU");
          }
          this.pduRemaining -= 4 + itemLength;
          this.pdvRemaining = itemLength - 2;
          const control = this.header[5] as number;
          this.sink.pdvBegin(
            this.header[4] as number,
            (control & 1) !== 0,
            (control & 2) !== 0,
            this.pdvRemaining,
          );
          if (this.pdvRemaining === 0) this.endPdv();
          else this.state = "pdvValue";
          break;
        }
        case "pdvValue": {
          const n = Math.min(this.pdvRemaining, chunk.length - pos);
          this.sink.pdvData(n === chunk.length ? chunk : chunk.subarray(pos, pos + n));
          pos += n;
          this.pdvRemaining -= n;
          if (this.pdvRemaining === 0) this.endPdv();
          break;
        }
        case "otherPdu": {
          const other = this.other as { parts: Buffer[]; remaining: number; total: number };
          const n = Math.min(other.remaining, chunk.length - pos);
          other.parts.push(Buffer.from(chunk.subarray(pos, pos + n))); // copied: kept across chunks
          pos += n;
          other.remaining -= n;
          if (other.remaining === 0) this.finishOther();
          break;
        }
      }
    }
  }

  private fillHeader(chunk: Buffer, pos: number): number {
    const n = Math.min(6 - this.headerFill, chunk.length - pos);
    chunk.copy(this.header, this.headerFill, pos, pos + n);
    this.headerFill += n;
    return pos + n;
  }

  private endPdv(): void {
    this.state = this.pduRemaining > 0 ? "pdvHeader" : "pduHeader";
    if (this.state === "pdvHeader" && this.pduRemaining < 6) {
      throw new PduError("trailing bytes in P-DATA-TF");
    }
    this.sink.pdvEnd();
  }

  private finishOther(): void {
    const other = this.other as { parts: Buffer[]; total: number };
    this.other = undefined;
    this.state = "pduHeader";
    this.sink.otherPdu(Buffer.concat(other.parts, other.total));
  }
}
