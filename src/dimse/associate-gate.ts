/**
 * The front of an SCP served by dcmjs-dimse (the MPPS SCP): the connection is held here until a
 * complete A-ASSOCIATE-RQ has arrived within the ARTIM time and passed the same validation as the
 * storage receiver's; only then is the socket handed over, with the bytes read so far pushed back
 * (`socket.unshift`), so the library only ever parses requests that are well formed. Anything else
 * ends here: A-ASSOCIATE-RJ, A-ABORT or a close, and one JSON log event.
 */
import type net from "node:net";
import type { Logger } from "pino";
import type { Admitted } from "./admission.js";
import { peerAddress } from "./admission.js";
import {
  ABORT_REASON,
  AssociateRejection,
  PDU_TYPE,
  PduError,
  encodeAbort,
  encodeAssociateRj,
  parseAssociateRq,
  peekAeTitles,
} from "./pdu.js";
import { PduStream } from "./pdu-stream.js";

export interface GateOptions {
  artimMs: number;
  /** A-ASSOCIATE-RQ larger than this is aborted unread. */
  maxAssociateRqBytes: number;
  log: Logger;
  /** The request is valid: serve the socket (which is paused; it resumes after this returns). */
  onValid(socket: net.Socket): void;
}

export class AssociateGate implements Admitted {
  readonly peer: string;
  private open = true;
  private readonly chunks: Buffer[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly reader: PduStream;
  private readonly onData = (chunk: Buffer) => this.read(chunk);
  private aeTitles: { calledAe: string; callingAe: string } | undefined;

  constructor(
    private readonly socket: net.Socket,
    private readonly opts: GateOptions,
  ) {
    this.peer = peerAddress(socket);
    this.reader = new PduStream(
      {
        otherPdu: (pdu) => this.onPdu(pdu),
        pdvBegin: () => {
          throw new PduError("P-DATA-TF before A-ASSOCIATE-RQ", ABORT_REASON.UNEXPECTED_PDU);
        },
        pdvData: () => {},
        pdvEnd: () => {},
      },
      0,
      opts.maxAssociateRqBytes,
    );
    socket.on("data", this.onData);
    socket.on("error", () => this.end("error", "network error"));
    socket.once("close", () => this.end("closed", "closed before A-ASSOCIATE-RQ"));
    this.timer = setTimeout(
      () => this.end("closed", "no A-ASSOCIATE-RQ within the ARTIM time"),
      opts.artimMs,
    );
    this.timer.unref();
  }

  get negotiating(): boolean {
    return this.open;
  }

  evict(reason: string): void {
    this.end("closed", reason);
  }

  private read(chunk: Buffer): void {
    if (!this.open) return;
    this.chunks.push(chunk);
    try {
      this.reader.push(chunk);
    } catch (err) {
      if (!this.open) return; // bytes after a valid request belong to the SCP
      if (err instanceof AssociateRejection) {
        this.socket.end(encodeAssociateRj(err.reject));
        this.end("rejected", err.message, false);
      } else {
        const reason = err instanceof PduError ? err.abortReason : ABORT_REASON.NOT_SPECIFIED;
        this.socket.end(encodeAbort(2, reason));
        this.end("error", (err as Error).message, false);
      }
    }
  }

  private onPdu(pdu: Buffer): void {
    if (!this.open) return;
    this.aeTitles = peekAeTitles(pdu);
    if (pdu[0] !== PDU_TYPE.ASSOCIATE_RQ)
      throw new PduError(
        `PDU type 0x${(pdu[0] ?? 0).toString(16)} before A-ASSOCIATE-RQ`,
        ABORT_REASON.UNEXPECTED_PDU,
      );
    parseAssociateRq(pdu); // throws AssociateRejection / PduError
    this.open = false;
    clearTimeout(this.timer);
    this.socket.off("data", this.onData);
    this.socket.pause();
    this.socket.unshift(Buffer.concat(this.chunks));
    this.opts.onValid(this.socket);
    this.socket.resume();
  }

  /** Log the one event of a connection that never got past the gate and close it. */
  private end(result: string, reason: string, destroyNow = true): void {
    if (!this.open) return;
    this.open = false;
    clearTimeout(this.timer);
    this.opts.log.warn(
      { event: "association", peer: this.peer, ...this.aeTitles, result, reason },
      "association refused",
    );
    if (destroyNow) this.socket.destroy();
    else setTimeout(() => this.socket.destroy(), Math.min(1000, this.opts.artimMs)).unref();
  }
}
