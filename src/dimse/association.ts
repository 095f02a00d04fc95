/**
 * A byte-faithful C-STORE SCU over `net.Socket`: a minimal DICOM Upper Layer requestor (PS3.8) that
 * sends a dataset's bytes exactly as given (the bytes after a Part-10 file's meta group), in the
 * transfer syntax the file already has. Nothing is parsed or re-encoded, so private tags, sequences
 * and odd encodings arrive unchanged.
 *
 * One request is outstanding at a time; `store` calls made while one is in flight are queued. Each
 * message is written as P-DATA-TF PDUs of at most the peer's maximum PDU length (one PDV per PDU),
 * corked so that the whole message leaves in one writev without copying the dataset.
 */
import type net from "node:net";
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from "../dicom/part10.js";
import { IMPLICIT_VR_LITTLE_ENDIAN } from "../dicom/transfer-syntax.js";
import { isPathSafeUid } from "../dicom/uid.js";
import { log as defaultLog, type Logger } from "../log.js";
import {
  COMMAND_FIELD,
  VERIFICATION_SOP_CLASS,
  encodeCEchoRq,
  encodeCStoreRq,
  parseCommand,
} from "./command.js";
import { connectDicom, peerLabel, type DicomTlsClient } from "./connect.js";
import { PermanentSendError, RetryableSendError, SendError } from "./errors.js";
import { PduStream } from "./pdu-stream.js";
import {
  MAX_CONTEXTS,
  PC_RESULT,
  PDU_TYPE,
  PduError,
  describeAbort,
  describeReject,
  encodeAbort,
  encodeAssociateRq,
  encodeReleaseRp,
  encodeReleaseRq,
  parseAbort,
  parseAssociateAc,
  parseAssociateRj,
} from "./pdu.js";
import { NOT_SENT, hex4, outcomeForStatus, type StoreOutcome } from "./status.js";

export interface StoreDestination {
  host: string;
  port: number;
  /** The peer's AE title (called AE). */
  calledAe: string;
  /** Our AE title (calling AE). */
  callingAe: string;
  /**
   * Limit for each network wait: TCP connect plus association negotiation, each C-STORE response,
   * the release response (default 30 s). Expiry aborts the association with a RetryableSendError.
   */
  timeoutMs?: number;
  /** Largest PDU we accept from the peer (default 65536); responses are small. */
  maxPduLength?: number;
  /** DICOM TLS (server certificate verified; ours sent when asked); plain TCP when absent. */
  tls?: DicomTlsClient;
  logger?: Logger;
}

export interface ContextRequest {
  sopClassUid: string;
  transferSyntaxUid: string;
}

export interface StoreRequest {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  /** The dataset exactly as it is to be sent: for a Part-10 file, the bytes after the meta group. */
  dataset: Uint8Array;
  /** C-MOVE sub-operation: MoveOriginatorApplicationEntityTitle / MessageID. */
  moveOriginator?: { aeTitle: string; messageId: number };
  /** 0 medium (default), 1 high, 2 low. */
  priority?: number;
}

export interface NegotiatedContext {
  /** Presentation context ID (odd). */
  id: number;
  sopClassUid: string;
  transferSyntaxUid: string;
  accepted: boolean;
  /** A-ASSOCIATE-AC result: 0 accepted, 1 user rejection, 2 provider rejection, 3 SOP class not supported, 4 transfer syntax not supported. */
  result: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_RECEIVE_PDU = 65_536;
/** PDUs we send are capped here even when the peer allows more (or says "no limit"). */
const SEND_PDU_CAP = 4 * 1024 * 1024;
/** PDUs larger than this from the peer are a protocol error. */
const RECEIVE_LIMIT = 16 * 1024 * 1024;
export { MAX_CONTEXTS };

/** The presentation context to propose for {@link StoreAssociation.echo}. */
export const VERIFICATION_CONTEXT: ContextRequest = {
  sopClassUid: VERIFICATION_SOP_CLASS,
  transferSyntaxUid: IMPLICIT_VR_LITTLE_ENDIAN,
};
const AE_RE = /^[\x20-\x5b\x5d-\x7e]{1,16}$/;

function contextKey(sopClassUid: string, transferSyntaxUid: string): string {
  return `${sopClassUid}|${transferSyntaxUid}`;
}

/**
 * Open an association proposing one presentation context per distinct (SOP class, transfer syntax)
 * pair, each with that transfer syntax only: a file is only ever sent in the transfer syntax it has.
 * Throws RetryableSendError (connection failure, timeout, A-ABORT, transient rejection) or
 * PermanentSendError (permanent rejection, invalid AE titles or UIDs, more than 128 pairs).
 */
export async function openAssociation(
  dest: StoreDestination,
  contexts: ContextRequest[],
): Promise<StoreAssociation> {
  const label = peerLabel(dest);
  for (const [what, ae] of [
    ["called AE", dest.calledAe],
    ["calling AE", dest.callingAe],
  ] as const) {
    if (!AE_RE.test(ae) || ae.trim() === "")
      throw new PermanentSendError(label, `${what} title is not 1-16 printable characters without backslash`);
  }
  const proposed: NegotiatedContext[] = [];
  const seen = new Set<string>();
  for (const c of contexts) {
    if (!isPathSafeUid(c.sopClassUid) || !isPathSafeUid(c.transferSyntaxUid))
      throw new PermanentSendError(
        label,
        "presentation context with an invalid SOP class or transfer syntax UID",
      );
    const key = contextKey(c.sopClassUid, c.transferSyntaxUid);
    if (seen.has(key)) continue;
    seen.add(key);
    proposed.push({ ...c, id: proposed.length * 2 + 1, accepted: false, result: 2 });
  }
  if (proposed.length === 0) throw new PermanentSendError(label, "no presentation context to propose");
  if (proposed.length > MAX_CONTEXTS)
    throw new PermanentSendError(label, `${proposed.length} presentation contexts (at most ${MAX_CONTEXTS})`);
  const association = new StoreAssociation(dest, proposed);
  await association.connect();
  return association;
}

type Waiter =
  | { kind: "associate"; resolve: () => void; reject: (e: SendError) => void }
  | {
      kind: "request";
      /** The response's command field (C-STORE-RSP or C-ECHO-RSP). */
      expect: number;
      messageId: number;
      resolve: (o: StoreOutcome) => void;
      reject: (e: SendError) => void;
    }
  | { kind: "release"; resolve: () => void };

type Queued =
  | {
      kind: "request";
      /** undefined: C-ECHO. */
      file: StoreRequest | undefined;
      context: NegotiatedContext;
      resolve: (o: StoreOutcome) => void;
      reject: (e: SendError) => void;
    }
  | { kind: "release"; resolve: () => void };

export class StoreAssociation {
  /** "CALLED_AE@host:port", used in every error message. */
  readonly destination: string;
  /** Proposed contexts with the peer's answer (filled when the association is accepted). */
  readonly contexts: readonly NegotiatedContext[];
  /** The peer's Implementation Class UID / Version Name from the A-ASSOCIATE-AC. */
  peerImplementation: { classUid?: string; versionName?: string } = {};
  /** Largest PDV data fragment we send (peer's max PDU length minus 6, even). */
  maxFragment = 0;

  private readonly byKey = new Map<string, NegotiatedContext>();
  private readonly timeoutMs: number;
  private readonly log: Logger;
  private readonly reader: PduStream;
  /** Command PDV bytes of the response being read. */
  private response: Buffer[] = [];
  private pdvIsCommand = false;
  private pdvIsLast = false;
  private socket?: net.Socket;
  private waiter?: Waiter;
  private readonly queue: Queued[] = [];
  private failure?: SendError;
  private state: "new" | "negotiating" | "open" | "releasing" | "closed" = "new";
  private nextMessageId = 1;
  private timer?: NodeJS.Timeout;
  private waitingFor = "";

  /** Use {@link openAssociation}. */
  constructor(
    private readonly dest: StoreDestination,
    contexts: NegotiatedContext[],
  ) {
    this.destination = peerLabel(dest);
    this.contexts = contexts;
    for (const c of contexts) this.byKey.set(contextKey(c.sopClassUid, c.transferSyntaxUid), c);
    this.timeoutMs = dest.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.log = (dest.logger ?? defaultLog).child({ component: "dimse-scu", destination: this.destination });
    this.reader = new PduStream(
      {
        otherPdu: (pdu) => this.onPdu(pdu),
        pdvBegin: (_pcId, isCommand, isLast) => this.onPdvBegin(isCommand, isLast),
        pdvData: (bytes) => {
          if (this.pdvIsCommand) this.response.push(Buffer.from(bytes)); // a response is small
        },
        pdvEnd: () => this.onPdvEnd(),
      },
      RECEIVE_LIMIT,
      RECEIVE_LIMIT,
    );
  }

  /** Whether the association is gone (released, aborted or failed). */
  get closed(): boolean {
    return this.state === "closed";
  }

  /** @internal TCP connect, A-ASSOCIATE-RQ, wait for AC/RJ. */
  connect(): Promise<void> {
    if (this.state !== "new") throw new Error("connect() called twice");
    this.state = "negotiating";
    return new Promise<void>((resolve, reject) => {
      this.waiter = { kind: "associate", resolve, reject };
      this.arm("TCP connection and association negotiation");
      const socket = connectDicom(this.dest, () => {
        socket.write(
          encodeAssociateRq({
            calledAe: this.dest.calledAe,
            callingAe: this.dest.callingAe,
            contexts: this.contexts.map((c) => ({
              id: c.id,
              abstractSyntax: c.sopClassUid,
              transferSyntaxes: [c.transferSyntaxUid],
            })),
            maxPduLength: this.dest.maxPduLength ?? DEFAULT_RECEIVE_PDU,
            implementationClassUid: IMPLEMENTATION_CLASS_UID,
            implementationVersionName: IMPLEMENTATION_VERSION_NAME,
          }),
        );
      });
      this.socket = socket;
      socket.on("data", (chunk: Buffer) => this.onData(chunk));
      socket.on("error", (err: NodeJS.ErrnoException) => {
        const phase = this.state === "negotiating" ? "connection failed" : "connection error";
        // TLS failures (certificate, handshake) need their message; socket errors read best by code.
        const why =
          err.code !== undefined && this.dest.tls !== undefined
            ? `${err.code}: ${err.message}`
            : (err.code ?? err.message);
        this.fail(new RetryableSendError(this.destination, `${phase} (${why})`, { cause: err }));
      });
      socket.on("close", () => {
        if (this.state === "releasing") this.finishRelease();
        else this.fail(new RetryableSendError(this.destination, "connection closed by the peer"));
      });
    });
  }

  /**
   * Send one C-STORE-RQ with the dataset bytes as they are and wait for the C-STORE-RSP.
   * Resolves with the classified outcome (including failures reported by the peer, and NOT_SENT
   * when no accepted presentation context matches the file's SOP class and transfer syntax); rejects
   * with RetryableSendError when the association fails (abort, timeout, connection loss).
   */
  store(file: StoreRequest): Promise<StoreOutcome> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.state !== "open")
      return Promise.reject(new Error(`${this.destination}: association is ${this.state}`));
    const context = this.byKey.get(contextKey(file.sopClassUid, file.transferSyntaxUid));
    if (!context || !context.accepted) {
      const what = `SOP class ${file.sopClassUid} in transfer syntax ${file.transferSyntaxUid}`;
      const reason = context
        ? `${this.destination} rejected the presentation context for ${what}: ${PC_RESULT[context.result] ?? `result ${context.result}`}`
        : `no presentation context was proposed for ${what}`;
      return Promise.resolve({ status: NOT_SENT, kind: "failure", retryable: false, reason });
    }
    return this.request(file, context);
  }

  /**
   * C-ECHO on the Verification context (propose it with {@link VERIFICATION_CONTEXT}); resolves with
   * the classified outcome of the peer's status.
   */
  echo(): Promise<StoreOutcome> {
    if (this.failure) return Promise.reject(this.failure);
    const context = this.byKey.get(
      contextKey(VERIFICATION_CONTEXT.sopClassUid, VERIFICATION_CONTEXT.transferSyntaxUid),
    );
    if (!context?.accepted)
      return Promise.resolve({
        status: NOT_SENT,
        kind: "failure",
        retryable: false,
        reason: `${this.destination} did not accept the Verification SOP class`,
      });
    return this.request(undefined, context);
  }

  private request(file: StoreRequest | undefined, context: NegotiatedContext): Promise<StoreOutcome> {
    if (this.state !== "open")
      return Promise.reject(new Error(`${this.destination}: association is ${this.state}`));
    return new Promise<StoreOutcome>((resolve, reject) => {
      this.queue.push({ kind: "request", file, context, resolve, reject });
      if (!this.waiter) this.pump();
    });
  }

  /**
   * A-RELEASE-RQ after queued stores finish, wait for A-RELEASE-RP, close. Never rejects: a peer
   * that does not answer the release in time is disconnected (and logged).
   */
  release(): Promise<void> {
    if (this.state === "closed" || this.failure) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.queue.push({ kind: "release", resolve });
      if (!this.waiter) this.pump();
    });
  }

  /** Send A-ABORT and close; pending and queued stores reject with RetryableSendError. */
  abort(): void {
    if (this.state === "closed") return;
    this.fail(new RetryableSendError(this.destination, "association aborted locally"), true);
  }

  // ---- internals ----

  private pump(): void {
    while (!this.waiter && !this.failure) {
      const next = this.queue.shift();
      if (!next) return;
      if (next.kind === "release") {
        this.state = "releasing";
        this.waiter = { kind: "release", resolve: next.resolve };
        this.arm("A-RELEASE-RP");
        this.socket!.write(encodeReleaseRq());
        return;
      }
      const messageId = this.nextMessageId;
      this.nextMessageId = messageId === 0xffff ? 1 : messageId + 1;
      const { file } = next;
      const expect = file ? COMMAND_FIELD.C_STORE_RSP : COMMAND_FIELD.C_ECHO_RSP;
      this.waiter = { kind: "request", expect, messageId, resolve: next.resolve, reject: next.reject };
      this.response = [];
      this.arm(`${file ? "C-STORE-RSP" : "C-ECHO-RSP"} to message ${messageId}`);
      if (file === undefined) {
        this.writeMessage(next.context.id, encodeCEchoRq(messageId), undefined);
        continue;
      }
      const command = encodeCStoreRq({
        sopClassUid: file.sopClassUid,
        sopInstanceUid: file.sopInstanceUid,
        messageId,
        ...(file.priority !== undefined && { priority: file.priority }),
        ...(file.moveOriginator && { moveOriginator: file.moveOriginator }),
      });
      this.writeMessage(next.context.id, command, file.dataset);
    }
  }

  /** P-DATA-TF PDUs, one PDV each, for the command then the dataset; one writev, no dataset copy. */
  private writeMessage(contextId: number, command: Uint8Array, dataset: Uint8Array | undefined): void {
    const frag = this.maxFragment;
    const commandPdvs = Math.max(1, Math.ceil(command.length / frag));
    const datasetPdvs = dataset ? Math.max(1, Math.ceil(dataset.length / frag)) : 0;
    const headers = Buffer.allocUnsafe(12 * (commandPdvs + datasetPdvs));
    const socket = this.socket!;
    let h = 0;
    const emit = (bytes: Uint8Array, count: number, commandBit: number): void => {
      for (let i = 0; i < count; i++) {
        const start = i * frag;
        const end = Math.min(bytes.length, start + frag);
        const n = end - start;
        headers[h] = PDU_TYPE.P_DATA_TF;
        headers[h + 1] = 0;
        headers.writeUInt32BE(n + 6, h + 2);
        headers.writeUInt32BE(n + 2, h + 6);
        headers[h + 10] = contextId;
        headers[h + 11] = commandBit | (i === count - 1 ? 2 : 0);
        socket.write(headers.subarray(h, h + 12));
        if (n > 0) socket.write(bytes.subarray(start, end));
        h += 12;
      }
    };
    socket.cork();
    emit(command, commandPdvs, 1);
    if (dataset) emit(dataset, datasetPdvs, 0);
    socket.uncork();
  }

  private onData(chunk: Buffer): void {
    if (this.state === "closed") return;
    try {
      this.reader.push(chunk);
    } catch (err) {
      this.protocolError(err instanceof Error ? err.message : "malformed PDU");
    }
  }

  private onPdvBegin(isCommand: boolean, isLast: boolean): void {
    if (this.waiter?.kind !== "request") throw new PduError("unexpected P-DATA-TF");
    this.pdvIsCommand = isCommand; // a response has no dataset; one sent anyway is ignored
    this.pdvIsLast = isLast;
  }

  private onPdvEnd(): void {
    const waiter = this.waiter;
    if (!this.pdvIsCommand || !this.pdvIsLast || waiter?.kind !== "request") return;
    const bytes = this.response.length === 1 ? this.response[0]! : Buffer.concat(this.response);
    this.response = [];
    this.onResponse(waiter, bytes);
  }

  private onPdu(pdu: Buffer): void {
    if (this.state === "closed") return;
    const type = pdu[0];
    const waiter = this.waiter;
    switch (type) {
      case PDU_TYPE.ASSOCIATE_AC:
        if (waiter?.kind !== "associate") return this.protocolError("unexpected A-ASSOCIATE-AC");
        return this.onAccept(pdu, waiter);
      case PDU_TYPE.ASSOCIATE_RJ: {
        if (waiter?.kind !== "associate") return this.protocolError("unexpected A-ASSOCIATE-RJ");
        const rj = parseAssociateRj(pdu);
        const message = `association rejected (${describeReject(rj)})`;
        const Err = rj.result === 2 ? RetryableSendError : PermanentSendError;
        return this.fail(new Err(this.destination, message, { reject: rj }));
      }
      case PDU_TYPE.RELEASE_RP:
        if (waiter?.kind !== "release") return this.protocolError("unexpected A-RELEASE-RP");
        return this.finishRelease();
      case PDU_TYPE.RELEASE_RQ:
        this.socket?.write(encodeReleaseRp());
        if (waiter?.kind === "release") return this.finishRelease();
        return this.fail(new RetryableSendError(this.destination, "association released by the peer"));
      case PDU_TYPE.ABORT:
        return this.fail(
          new RetryableSendError(this.destination, `association ${describeAbort(parseAbort(pdu))}`),
        );
      default:
        return this.protocolError(`unexpected PDU type 0x${(type ?? 0).toString(16)}`);
    }
  }

  private onAccept(pdu: Buffer, waiter: Extract<Waiter, { kind: "associate" }>): void {
    const ac = parseAssociateAc(pdu);
    const answers = new Map(ac.contexts.map((c) => [c.id, c]));
    for (const c of this.contexts as NegotiatedContext[]) {
      const answer = answers.get(c.id);
      c.result = answer ? answer.result : 2;
      // Accepting a transfer syntax we did not propose is a protocol violation; do not use it.
      c.accepted = answer?.result === 0 && answer.transferSyntax === c.transferSyntaxUid;
      if (answer?.result === 0 && !c.accepted) c.result = 4;
    }
    const peerMax = ac.maxPduLength === 0 ? SEND_PDU_CAP : Math.min(ac.maxPduLength, SEND_PDU_CAP);
    this.maxFragment = Math.max(2, (peerMax - 6) & ~1);
    this.peerImplementation = {
      ...(ac.implementationClassUid !== undefined && { classUid: ac.implementationClassUid }),
      ...(ac.implementationVersionName !== undefined && { versionName: ac.implementationVersionName }),
    };
    this.state = "open";
    this.waiter = undefined;
    this.disarm();
    this.log.debug(
      {
        accepted: this.contexts.filter((c) => c.accepted).length,
        proposed: this.contexts.length,
        peerMaxPdu: ac.maxPduLength,
      },
      "association accepted",
    );
    waiter.resolve();
  }

  private onResponse(waiter: Extract<Waiter, { kind: "request" }>, bytes: Buffer): void {
    const command = parseCommand(bytes);
    const field = command.us(0x0100);
    if (field !== waiter.expect)
      return this.protocolError(`expected command field ${hex4(waiter.expect)}, got ${hex4(field ?? 0)}`);
    const respondedTo = command.us(0x0120);
    if (respondedTo !== waiter.messageId)
      return this.protocolError(`response to message ${respondedTo ?? "?"}, expected ${waiter.messageId}`);
    const status = command.us(0x0900);
    if (status === undefined) return this.protocolError("response without status");
    this.waiter = undefined;
    this.disarm();
    const outcome = outcomeForStatus(status, command.tags(0x0901), command.text(0x0902));
    if (outcome.reason) outcome.reason += ` (from ${this.destination})`;
    waiter.resolve(outcome);
    this.pump();
  }

  private finishRelease(): void {
    const waiter = this.waiter;
    this.state = "closed";
    this.waiter = undefined;
    this.disarm();
    this.socket?.end();
    this.socket?.destroy();
    this.log.debug("association released");
    if (waiter?.kind === "release") waiter.resolve();
    for (const q of this.queue.splice(0)) {
      if (q.kind === "release") q.resolve();
      else
        q.reject(
          new RetryableSendError(this.destination, "association released before the request was sent"),
        );
    }
  }

  private protocolError(what: string): void {
    this.fail(new RetryableSendError(this.destination, `protocol error: ${what}; association aborted`), true);
  }

  /** Tear down after an error; every waiter and queued request rejects with `err` (release resolves). */
  private fail(err: SendError, sendAbort = false): void {
    if (this.state === "closed") return;
    this.failure = err;
    this.state = "closed";
    this.disarm();
    const socket = this.socket;
    if (socket && !socket.destroyed) {
      if (sendAbort && socket.writable && !socket.connecting) {
        socket.end(encodeAbort());
        setTimeout(() => socket.destroy(), 1000).unref();
      } else {
        socket.destroy();
      }
    }
    this.log.debug({ err: err.message }, "association failed");
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter?.kind === "release") waiter.resolve();
    else waiter?.reject(err);
    for (const q of this.queue.splice(0)) {
      if (q.kind === "release") q.resolve();
      else q.reject(err);
    }
  }

  private arm(what: string): void {
    this.waitingFor = what;
    if (this.timer) this.timer.refresh();
    else this.timer = setTimeout(() => this.onTimeout(), this.timeoutMs).unref();
  }

  private disarm(): void {
    this.waitingFor = "";
    if (this.state === "closed" && this.timer) clearTimeout(this.timer);
  }

  private onTimeout(): void {
    if (!this.waitingFor || this.state === "closed") return;
    const what = this.waitingFor;
    if (this.waiter?.kind === "release") {
      this.log.warn(`no A-RELEASE-RP within ${this.timeoutMs} ms; disconnecting`);
      return this.finishRelease();
    }
    this.fail(new RetryableSendError(this.destination, `no ${what} within ${this.timeoutMs} ms`), true);
  }
}
