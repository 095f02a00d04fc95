/**
 * One DICOM association on the storage SCP (a dcmjs-dimse Scp subclass).
 *
 * dcmjs-dimse does the association negotiation (A-ASSOCIATE, release, abort, timeouts); we decide
 * what to accept. For the data phase there are two paths that share the store-then-respond logic:
 *
 * - Fast path (default): the socket's bytes go through our {@link PduStream} instead of the library's
 *   accumulator. P-DATA-TF is handled here: PDV values are copied once from the socket chunks into
 *   the {@link DatasetCollector}'s pooled buffer, the command set is read by a small implicit-VR
 *   reader, and the response PDU is hand-encoded. Every other PDU (association, release, abort) is
 *   passed to the library's `_processPdu`. The library's own data path re-concatenates each PDU per
 *   socket chunk, parses every command set with dcmjs (naturalize) and encodes every response with
 *   dcmjs: about 0.5 ms of CPU and a burst of garbage per C-STORE, more than persisting the file.
 * - Library path (`fastPath: false`, or if dcmjs-dimse's internals are not as expected): the
 *   documented streaming hooks `createStoreWritableStream` / `createDatasetFromStoreWritableStream`
 *   and `cStoreRequest` / `cEchoRequest`; responses are still hand-encoded.
 *
 * Either way the dataset bytes are kept exactly as received (never re-encoded).
 */
import type { Socket } from "node:net";
import type { Writable } from "node:stream";
import dimse from "dcmjs-dimse";
import type { Logger } from "pino";
import { DatasetCollector } from "./collect.js";
import { COMMAND_FIELD, encodeResponsePdu } from "./dimse-fast.js";
import { PduStream, type PduSink } from "./pdu-stream.js";
import { chooseTransferSyntax, isAcceptedAbstractSyntax } from "./policy.js";
import { STORE_STATUS, type InstanceStore, type StoreRequestInfo } from "./store.js";

const { Scp, constants } = dimse;
const { PresentationContextResult, RejectResult, RejectSource, RejectReason, AbortSource, AbortReason } =
  constants;
type Association = dimse.association.Association;
type PresentationContext = dimse.association.PresentationContext;
type CStoreRequest = dimse.requests.CStoreRequest;
type CEchoRequest = dimse.requests.CEchoRequest;
type CStoreResponse = dimse.responses.CStoreResponse;
type CEchoResponse = dimse.responses.CEchoResponse;
type Dataset = dimse.Dataset;

/** Shared state of the receiver that every association sees. */
export interface ScpContext {
  store: InstanceStore;
  log: Logger;
  allowedCallingAeTitles: readonly string[];
  maxPduLength: number;
  /** Datasets above this size go to a temporary file while they arrive. */
  spillThreshold: number;
  /** Take P-DATA over from the library (see the module comment). */
  fastPath: boolean;
  /** Reserve an association slot; false when the limit is reached or the receiver is closing. */
  acquire(scp: FionaScp): boolean;
  release(scp: FionaScp): void;
  nextId(): number;
  /** bytes: the dataset's size, counted when stored. */
  onStoreOutcome(ok: boolean, bytes?: number): void;
  onRejected(): void;
}

export type AssociationEnd = "released" | "aborted" | "rejected" | "closed" | "error";

/** The fields of a DIMSE request command set the SCP needs. */
interface CommandInfo {
  commandField: number;
  messageId: number;
  affectedSopClassUid: string;
  affectedSopInstanceUid: string;
  hasDataset: boolean;
}

interface AcceptedContext {
  abstractSyntaxUid: string;
  transferSyntaxUid: string;
}

const C_STORE_RQ = 0x0001;
const C_ECHO_RQ = 0x0030;
const C_CANCEL_RQ = 0x0fff;
const STATUS_UNRECOGNIZED_OPERATION = 0x0211;

/** Read the request fields from a command set (always implicit VR little endian, PS3.7 6.3.1). */
function parseCommand(buf: Buffer): CommandInfo {
  const cmd: CommandInfo = {
    commandField: -1,
    messageId: 0,
    affectedSopClassUid: "",
    affectedSopInstanceUid: "",
    hasDataset: false,
  };
  let pos = 0;
  while (pos + 8 <= buf.length) {
    const group = buf.readUInt16LE(pos);
    const element = buf.readUInt16LE(pos + 2);
    const length = buf.readUInt32LE(pos + 4);
    const value = pos + 8;
    if (group !== 0x0000 || value + length > buf.length) throw new Error("malformed command set");
    if (element === 0x0100 && length >= 2) cmd.commandField = buf.readUInt16LE(value);
    else if (element === 0x0110 && length >= 2) cmd.messageId = buf.readUInt16LE(value);
    else if (element === 0x0800 && length >= 2) cmd.hasDataset = buf.readUInt16LE(value) !== 0x0101;
    else if (element === 0x0002) cmd.affectedSopClassUid = uidText(buf, value, length);
    else if (element === 0x1000) cmd.affectedSopInstanceUid = uidText(buf, value, length);
    pos = value + length;
  }
  if (cmd.commandField < 0) throw new Error("command set without CommandField");
  return cmd;
}

function uidText(buf: Buffer, pos: number, length: number): string {
  // UIDs are at most 64 characters; keep a little more so an oversized one is still visibly invalid.
  return buf
    .toString("latin1", pos, pos + Math.min(length, 80))
    .replace(/[\0 ]+$/, "")
    .trim();
}

export class FionaScp extends Scp {
  readonly id: number;
  readonly peer: string;
  callingAe = "";
  calledAe = "";
  accepted = false;
  private ended: AssociationEnd | undefined;
  private rejectReason: string | undefined;
  private aborting = false;
  private readonly startedAt = Date.now();
  private readonly inflight = new Set<Promise<void>>();
  private readonly contexts = new Map<number, AcceptedContext>();
  private stored = 0;
  private failed = 0;
  private bytes = 0;
  // fast path state
  private commandChunks: Buffer[] = [];
  private commandBytes = 0;
  private current: { pcId: number; cmd: CommandInfo; collector: DatasetCollector; drop: boolean } | undefined;
  // library path state
  private readonly collectors = new WeakMap<
    CStoreRequest,
    { collector: DatasetCollector; context: PresentationContext }
  >();

  constructor(
    readonly socket: Socket,
    private readonly ctx: ScpContext,
    opts: ConstructorParameters<typeof Scp>[1],
  ) {
    super(socket, opts);
    this.id = ctx.nextId();
    this.peer = (socket.remoteAddress ?? "").replace(/^::ffff:/, "");
    // dcmjs-dimse's own Server marks its Scp instances connected; without a connect time the
    // association timeout never fires for server sockets. Both are plain fields of its Network class.
    const internals = this as unknown as { connected?: boolean; connectedTime?: number };
    internals.connected = true;
    internals.connectedTime = Date.now();
    if (ctx.fastPath) this.takeOverSocketReads(socket);
    this.on("close", () => this.onClose());
    this.on("networkError", (err: Error) => {
      this.ended ??= "error";
      ctx.log.warn({ event: "association-network-error", ...this.who(), err: err.message }, "network error");
      socket.destroy();
    });
  }

  private who() {
    return { association: this.id, callingAe: this.callingAe, calledAe: this.calledAe, peer: this.peer };
  }

  // ---------------------------------------------------------------- negotiation

  override associationRequested(association: Association): void {
    this.callingAe = association.getCallingAeTitle().trim();
    this.calledAe = association.getCalledAeTitle().trim();
    const allow = this.ctx.allowedCallingAeTitles;
    if (allow.length > 0 && !allow.includes(this.callingAe)) {
      this.reject(
        "calling AE title not allowed",
        RejectResult.Permanent,
        RejectSource.ServiceUser,
        RejectReason.CallingAeNotRecognized,
      );
      return;
    }
    if (!this.ctx.acquire(this)) {
      this.reject(
        "too many associations",
        RejectResult.Transient,
        RejectSource.ServiceProviderPresentation,
        RejectReason.LocalLimitExceeded,
      );
      return;
    }
    this.accepted = true;
    for (const { id, context } of association.getPresentationContexts()) {
      const abstractSyntaxUid = context.getAbstractSyntaxUid();
      if (!isAcceptedAbstractSyntax(abstractSyntaxUid)) {
        context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
        continue;
      }
      const ts = chooseTransferSyntax(context.getTransferSyntaxUids());
      if (ts === undefined) {
        context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
        continue;
      }
      context.setResult(PresentationContextResult.Accept, ts);
      this.contexts.set(id, { abstractSyntaxUid, transferSyntaxUid: ts });
    }
    // The accept announces min(this, Implementation max) as what we can receive. Our own PDUs are
    // responses of a few hundred bytes, far below any peer's limit.
    association.setMaxPduLength(this.ctx.maxPduLength);
    this.sendAssociationAccept();
    this.ctx.log.info(
      { event: "association-accepted", ...this.who(), presentationContexts: this.contexts.size },
      "association accepted",
    );
  }

  private reject(reason: string, result: number, source: number, code: number): void {
    this.ended = "rejected";
    this.rejectReason = reason;
    this.ctx.onRejected();
    this.sendAssociationReject(result, source, code);
    // Let the peer read the rejection and close; then close from our side.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  override associationReleaseRequested(): void {
    void this.settle().then(() => {
      this.ended ??= "released";
      if (this.socket.destroyed) return;
      this.sendAssociationReleaseResponse();
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 5000).unref();
    });
  }

  override abort(source: number, reason: number): void {
    this.ended ??= "aborted";
    this.ctx.log.warn(
      { event: "association-aborted", ...this.who(), source, reason },
      "association aborted by peer",
    );
    this.socket.destroy();
  }

  private protocolAbort(reason: string): void {
    if (this.aborting) return;
    this.aborting = true;
    this.ended = "error";
    this.ctx.log.warn({ event: "association-protocol-error", ...this.who(), reason }, "aborting association");
    try {
      this.sendAbort(AbortSource.ServiceProvider, AbortReason.UnexpectedPdu);
    } finally {
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1000).unref();
    }
  }

  // ---------------------------------------------------------------- fast path

  /**
   * Replace the library's socket reader (one "data" listener, installed by its constructor) with a
   * {@link PduStream}: P-DATA is handled here, every other PDU goes to the library's `_processPdu`.
   */
  private takeOverSocketReads(socket: Socket): void {
    const listeners = socket.listeners("data");
    if (listeners.length !== 1) {
      this.ctx.log.warn(
        { event: "dimse-internals-changed" },
        "unexpected socket listeners; library reader kept",
      );
      return;
    }
    socket.removeListener("data", listeners[0] as (...args: unknown[]) => void);
    const internals = this as unknown as {
      lastPduTime?: number;
      statistics?: { addBytesReceived(n: number): void };
    };
    const base = Scp.prototype as unknown as { _processPdu: (pdu: Buffer) => Promise<void> };
    if (typeof base._processPdu !== "function") {
      this.ctx.log.warn(
        { event: "dimse-internals-changed" },
        "dcmjs-dimse has no _processPdu; library reader kept",
      );
      socket.on("data", listeners[0] as (...args: unknown[]) => void);
      return;
    }
    const sink: PduSink = {
      pduSeen: () => {
        internals.lastPduTime = Date.now();
      },
      otherPdu: (pdu) => {
        void base._processPdu.call(this, pdu);
      },
      pdvBegin: (pcId, isCommand, isLast) => this.pdvBegin(pcId, isCommand, isLast),
      pdvData: (bytes) => this.pdvData(bytes),
      pdvEnd: () => this.pdvEnd(),
    };
    // A-ASSOCIATE-RQ may carry large user-identity fields: allow 1 MiB for non-P-DATA PDUs.
    const stream = new PduStream(sink, this.ctx.maxPduLength, 1 << 20);
    socket.on("data", (chunk: Buffer) => {
      if (this.aborting) return;
      internals.statistics?.addBytesReceived(chunk.length);
      try {
        stream.push(chunk);
      } catch (err) {
        this.current?.collector.discard();
        this.current = undefined;
        this.protocolAbort((err as Error).message);
      }
    });
  }

  private pdv: { pcId: number; isCommand: boolean; isLast: boolean; context: AcceptedContext } | undefined;

  private pdvBegin(pcId: number, isCommand: boolean, isLast: boolean): void {
    if (!this.accepted) throw new Error("P-DATA before the association was accepted");
    const context = this.contexts.get(pcId);
    if (context === undefined) throw new Error(`PDV on presentation context ${pcId}, which was not accepted`);
    if (isCommand) {
      if (this.current !== undefined) throw new Error("command while a dataset is still arriving");
    } else {
      if (this.current === undefined) throw new Error("dataset fragment without a command");
      if (this.current.pcId !== pcId) throw new Error("dataset fragment on another presentation context");
    }
    this.pdv = { pcId, isCommand, isLast, context };
  }

  private pdvData(bytes: Buffer): void {
    const pdv = this.pdv as { isCommand: boolean };
    if (pdv.isCommand) {
      this.commandBytes += bytes.length;
      if (this.commandBytes > 64 * 1024) throw new Error("command set too large");
      this.commandChunks.push(Buffer.from(bytes)); // small: copy rather than pin the 64 KiB socket chunk
    } else {
      const current = this.current as { collector: DatasetCollector; drop: boolean };
      if (!current.drop) current.collector.add(bytes);
    }
  }

  private pdvEnd(): void {
    const pdv = this.pdv as { pcId: number; isCommand: boolean; isLast: boolean; context: AcceptedContext };
    this.pdv = undefined;
    if (!pdv.isLast) return;
    if (!pdv.isCommand) {
      const current = this.current as { cmd: CommandInfo; collector: DatasetCollector; drop: boolean };
      this.current = undefined;
      if (current.drop) current.collector.discard();
      else this.runStore(pdv.pcId, current.cmd, pdv.context, current.collector);
      return;
    }
    const cmd = parseCommand(
      this.commandChunks.length === 1 ? (this.commandChunks[0] as Buffer) : Buffer.concat(this.commandChunks),
    );
    this.commandChunks = [];
    this.commandBytes = 0;
    this.onCommand(pdv.pcId, cmd, pdv.context);
  }

  private onCommand(pcId: number, cmd: CommandInfo, context: AcceptedContext): void {
    if (cmd.commandField === C_STORE_RQ && cmd.hasDataset) {
      this.current = { pcId, cmd, collector: this.newCollector(this.requestInfo(cmd, context)), drop: false };
      return;
    }
    if (cmd.commandField === C_STORE_RQ) {
      this.failed++;
      this.ctx.onStoreOutcome(false);
      this.respond(pcId, COMMAND_FIELD.CStoreRsp, cmd, STORE_STATUS.CannotUnderstand, "no dataset");
      return;
    }
    if (cmd.commandField === C_ECHO_RQ) {
      this.respond(pcId, COMMAND_FIELD.CEchoRsp, cmd, STORE_STATUS.Success);
      return;
    }
    if (cmd.commandField === C_CANCEL_RQ || (cmd.commandField & 0x8000) !== 0) return; // nothing to answer
    // Any other request on a storage or verification context: answer, then expect and drop its dataset.
    this.respond(
      pcId,
      cmd.commandField | 0x8000,
      cmd,
      STATUS_UNRECOGNIZED_OPERATION,
      "unsupported operation",
    );
    if (cmd.hasDataset) {
      this.current = { pcId, cmd, collector: this.newCollector(this.requestInfo(cmd, context)), drop: true };
    }
  }

  // ---------------------------------------------------------------- library path

  override cEchoRequest(request: CEchoRequest, callback: (response: CEchoResponse) => void): void {
    const response = dimse.responses.CEchoResponse.fromRequest(request);
    response.setStatus(constants.Status.Success);
    callback(response);
  }

  override createStoreWritableStream(context: PresentationContext, request: CStoreRequest): Writable {
    const collector = this.newCollector(this.requestInfo(commandOf(request), acceptedOf(context)));
    this.collectors.set(request, { collector, context });
    return collector;
  }

  override createDatasetFromStoreWritableStream(
    _writable: Writable,
    _context: PresentationContext,
    callback: (dataset: Dataset) => void,
  ): void {
    // The bytes stay in the collector; cStoreRequest gets no parsed Dataset (nothing is re-encoded).
    callback(undefined as unknown as Dataset);
  }

  override cStoreRequest(request: CStoreRequest, callback: (response: CStoreResponse) => void): void {
    // The context comes from the PDVs, not from the abstract syntax: an SCU may propose several
    // contexts for one SOP class with different transfer syntaxes (storescu does).
    const entry = this.collectors.get(request);
    this.collectors.delete(request);
    const cmd = commandOf(request);
    if (entry === undefined) {
      this.failed++;
      this.ctx.onStoreOutcome(false);
      const response = dimse.responses.CStoreResponse.fromRequest(request);
      response.setStatus(STORE_STATUS.CannotUnderstand);
      callback(response);
      return;
    }
    this.runStore(entry.context.getPresentationContextId(), cmd, acceptedOf(entry.context), entry.collector);
  }

  // ---------------------------------------------------------------- shared

  private newCollector(info: StoreRequestInfo): DatasetCollector {
    return new DatasetCollector({
      spillThreshold: this.ctx.spillThreshold,
      spillPath: () => this.ctx.store.tmpPath(),
      spillHeader: () => this.ctx.store.header(info),
    });
  }

  private requestInfo(cmd: CommandInfo, context: AcceptedContext): StoreRequestInfo {
    return {
      callingAe: this.callingAe,
      calledAe: this.calledAe,
      peer: this.peer,
      sopClassUid: cmd.affectedSopClassUid,
      sopInstanceUid: cmd.affectedSopInstanceUid,
      transferSyntaxUid: context.transferSyntaxUid,
    };
  }

  /** Persist, enqueue, then answer; the response goes out only when both are done. */
  private runStore(
    pcId: number,
    cmd: CommandInfo,
    context: AcceptedContext,
    collector: DatasetCollector,
  ): void {
    this.bytes += collector.length;
    const work = this.ctx.store
      .store(collector, this.requestInfo(cmd, context))
      .then((outcome) => {
        const ok = outcome.status === STORE_STATUS.Success;
        if (ok) this.stored++;
        else this.failed++;
        this.ctx.onStoreOutcome(ok, collector.length);
        this.respond(pcId, COMMAND_FIELD.CStoreRsp, cmd, outcome.status, outcome.comment);
      })
      .catch((err: unknown) => {
        this.failed++;
        this.ctx.onStoreOutcome(false);
        this.ctx.log.error(
          { event: "store-crashed", ...this.who(), err: String(err) },
          "store failed unexpectedly",
        );
        this.respond(pcId, COMMAND_FIELD.CStoreRsp, cmd, STORE_STATUS.OutOfResources, "internal error");
      })
      .finally(() => this.inflight.delete(work));
    this.inflight.add(work);
  }

  private respond(
    pcId: number,
    commandField: number,
    cmd: CommandInfo,
    status: number,
    comment?: string,
  ): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    this.socket.write(
      encodeResponsePdu({
        presentationContextId: pcId,
        commandField,
        messageIdBeingRespondedTo: cmd.messageId,
        affectedSopClassUid: cmd.affectedSopClassUid,
        affectedSopInstanceUid: cmd.affectedSopInstanceUid,
        status,
        errorComment: status === STORE_STATUS.Success ? undefined : comment,
      }),
    );
  }

  /** Stores not yet answered on this association. */
  get activeStores(): number {
    return this.inflight.size;
  }

  /** Wait until in-flight stores are answered. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
  }

  private onClose(): void {
    if (this.current !== undefined) {
      this.current.collector.discard(); // the peer went away mid-dataset: nothing was acknowledged
      this.current = undefined;
    }
    if (this.accepted) this.ctx.release(this);
    const event = {
      event: "association",
      ...this.who(),
      result: this.ended ?? "closed",
      reason: this.rejectReason,
      stored: this.stored,
      failed: this.failed,
      bytes: this.bytes,
      ms: Date.now() - this.startedAt,
    };
    if (this.ended === "rejected" || this.ended === "error" || this.failed > 0) {
      this.ctx.log.warn(event, "association ended");
    } else this.ctx.log.info(event, "association ended");
  }
}

function commandOf(request: CStoreRequest): CommandInfo {
  return {
    commandField: C_STORE_RQ,
    messageId: request.getMessageId(),
    affectedSopClassUid: (request.getAffectedSopClassUid() ?? "").trim(),
    affectedSopInstanceUid: (request.getAffectedSopInstanceUid() ?? "").trim(),
    hasDataset: true,
  };
}

function acceptedOf(context: PresentationContext): AcceptedContext {
  return {
    abstractSyntaxUid: context.getAbstractSyntaxUid(),
    transferSyntaxUid: context.getAcceptedTransferSyntaxUid() ?? "",
  };
}
