/**
 * One connection to the storage SCP, from its first byte to its close: the acceptor side of the PS3.8
 * state machine on FIONA's own PDU reader and command codec (src/dimse).
 *
 *   awaiting-rq --A-ASSOCIATE-RQ--> open --A-RELEASE-RQ--> releasing --> closing
 *        |  ARTIM expires, anything else                |  protocol error, A-ABORT, idle timeout
 *        +--> closing (closed / A-ASSOCIATE-RJ / A-ABORT) +--> closing (A-ABORT)
 *
 * This class is the boundary for everything a peer sends: any exception while reading it (a
 * malformed PDU, a hostile length, a bug) ends this association only, with an A-ABORT or an
 * A-ASSOCIATE-RJ, and one JSON log event when the connection closes.
 *
 * P-DATA values are copied once, from the socket chunks into the {@link DatasetCollector}; the dataset
 * bytes are stored exactly as received (never re-encoded) and answered only once stored and enqueued.
 */
import type { Socket } from "node:net";
import type { Logger } from "pino";
import {
  COMMAND_FIELD,
  NO_DATASET,
  RESPONSE_BIT,
  VERIFICATION_SOP_CLASS,
  commandPdu,
  encodeResponse,
  parseCommand,
} from "../dimse/command.js";
import {
  ABORT_REASON,
  AssociateRejection,
  PDU_TYPE,
  PduError,
  REJECT,
  describeAbort,
  encodeAbort,
  encodeAssociateAc,
  encodeAssociateRj,
  encodeReleaseRp,
  parseAbort,
  parseAssociateRq,
  peekAeTitles,
  MAX_ASSOCIATE_RQ_BYTES,
  type AcceptResult,
} from "../dimse/pdu.js";
import { PduStream } from "../dimse/pdu-stream.js";
import { peerAddress } from "../dimse/admission.js";
import { DatasetCollector } from "./collect.js";
import { chooseTransferSyntax, isAcceptedAbstractSyntax } from "./policy.js";
import { STORE_STATUS, type InstanceStore, type StoreOutcome, type StoreRequestInfo } from "./store.js";

/** Shared state of the receiver that every association sees. */
export interface AssociationContext {
  store: InstanceStore;
  log: Logger;
  allowedCallingAeTitles: readonly string[];
  /** Largest P-DATA-TF we accept (announced in the A-ASSOCIATE-AC). */
  maxPduLength: number;
  /** Datasets above this size go to a temporary file while they arrive. */
  spillThreshold: number;
  /** Time for a complete A-ASSOCIATE-RQ, and for a peer to close after a reject or release. */
  artimMs: number;
  /** An open association without a PDU for this long is aborted. */
  idleMs: number;
  implementation: { classUid: string; versionName: string };
  /** Accept the Verification SOP class only (the heartbeat's loopback listener stores nothing). */
  verificationOnly?: boolean;
  /** Reserve an association slot; false when the limit is reached or the receiver is closing. */
  acquire(association: ScpAssociation): boolean;
  release(association: ScpAssociation): void;
  nextId(): number;
  /** bytes: the dataset's size, counted when stored. */
  onStoreOutcome(ok: boolean, bytes?: number): void;
  onRejected(): void;
}

/** How an association ended: released, aborted by the peer, rejected or aborted by us, or just closed. */
export type AssociationEnd = "released" | "aborted" | "rejected" | "error" | "closed";

const MAX_COMMAND_SET_BYTES = 64 * 1024;
const SPILL_SPACE_CHECK_BYTES = 4 * 1024 * 1024;
/** After our A-ABORT the peer gets this long to close (PS3.8 leaves it to the ARTIM timer). */
const ABORT_LINGER_MS = 1000;
const STATUS_UNRECOGNIZED_OPERATION = 0x0211;

type State = "awaiting-rq" | "open" | "releasing" | "closing";

/** The fields of a DIMSE request command set the SCP needs. */
interface CommandInfo {
  commandField: number;
  messageId: number;
  affectedSopClassUid: string;
  affectedSopInstanceUid: string;
  hasDataset: boolean;
}

interface Incoming {
  pcId: number;
  cmd: CommandInfo;
  collector: DatasetCollector;
  /** A dataset of a refused request: read to keep the stream in step, then dropped. */
  drop: boolean;
  /** A C-STORE refused before its dataset (disk below the floor): answered once the dataset is read. */
  refused?: StoreOutcome;
  /** Dataset length at the last free-space check of a spilling dataset. */
  spaceCheckedAt: number;
}

export class ScpAssociation {
  readonly id: number;
  readonly peer: string;
  callingAe = "";
  calledAe = "";
  private state: State = "awaiting-rq";
  private accepted = false;
  private ended: AssociationEnd | undefined;
  private reason: string | undefined;
  private readonly startedAt = Date.now();
  private readonly inflight = new Set<Promise<void>>();
  /** Accepted presentation contexts: id -> transfer syntax. */
  private readonly contexts = new Map<number, string>();
  private stored = 0;
  private failed = 0;
  private bytes = 0;
  private readonly reader: PduStream;
  private timer: NodeJS.Timeout;
  private commandChunks: Buffer[] = [];
  private commandBytes = 0;
  private pdv: { pcId: number; isCommand: boolean; isLast: boolean } | undefined;
  private current: Incoming | undefined;

  constructor(
    readonly socket: Socket,
    private readonly ctx: AssociationContext,
  ) {
    this.id = ctx.nextId();
    this.peer = peerAddress(socket);
    this.reader = new PduStream(
      {
        otherPdu: (pdu) => this.onOtherPdu(pdu),
        pdvBegin: (pcId, isCommand, isLast) => this.pdvBegin(pcId, isCommand, isLast),
        pdvData: (bytes) => this.pdvData(bytes),
        pdvEnd: () => this.pdvEnd(),
      },
      ctx.maxPduLength,
      MAX_ASSOCIATE_RQ_BYTES,
    );
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (err: NodeJS.ErrnoException) => {
      this.finish("error", `network error (${err.code ?? err.message})`);
      socket.destroy();
    });
    socket.once("close", () => this.onClose());
    // ARTIM (PS3.8 9.1.5): the A-ASSOCIATE-RQ must be complete within artimMs of the connection.
    this.timer = setTimeout(() => this.onTimer(), ctx.artimMs).unref();
  }

  /** True once an A-ASSOCIATE-RQ was accepted (until the connection closes). */
  get associated(): boolean {
    return this.accepted;
  }

  /** Still without a complete A-ASSOCIATE-RQ: what admission control may evict. */
  get negotiating(): boolean {
    return this.state === "awaiting-rq";
  }

  /** Stores not yet answered on this association. */
  get activeStores(): number {
    return this.inflight.size;
  }

  /** Wait until in-flight stores are answered. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
  }

  /** Close a connection still negotiating (admission control made room for another). */
  evict(reason: string): void {
    this.finish("closed", reason);
    this.state = "closing";
    this.socket.destroy();
  }

  private who() {
    return { association: this.id, callingAe: this.callingAe, calledAe: this.calledAe, peer: this.peer };
  }

  /** Remember the first way this association ended (for its one log event). */
  private finish(how: AssociationEnd, reason?: string): void {
    if (this.ended !== undefined) return;
    this.ended = how;
    this.reason = reason;
  }

  private setTimer(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.onTimer(), ms).unref();
  }

  private onTimer(): void {
    if (this.state === "awaiting-rq") {
      this.finish("closed", "no A-ASSOCIATE-RQ within the ARTIM time");
      this.socket.destroy();
    } else if (this.state === "open") {
      this.abort(ABORT_REASON.NOT_SPECIFIED, `no PDU for ${this.ctx.idleMs} ms`);
    } else this.socket.destroy(); // the peer did not close after our reject, release or abort
  }

  // ---------------------------------------------------------------- reading

  private onData(chunk: Buffer): void {
    if (this.state === "closing") return;
    if (this.state === "open") this.timer.refresh();
    try {
      this.reader.push(chunk);
    } catch (err) {
      if (err instanceof AssociateRejection) this.reject(err);
      else if (err instanceof PduError) this.abort(err.abortReason, err.message);
      else this.abort(ABORT_REASON.NOT_SPECIFIED, `internal error: ${(err as Error).message}`);
    }
  }

  private onOtherPdu(pdu: Buffer): void {
    if (this.state === "closing") return;
    const type = pdu[0];
    if (type === PDU_TYPE.ASSOCIATE_RQ && this.state === "awaiting-rq") return this.onAssociateRq(pdu);
    if (type === PDU_TYPE.RELEASE_RQ && this.state === "open") return this.onReleaseRq();
    if (type === PDU_TYPE.ABORT) {
      this.finish("aborted", describeAbort(parseAbort(pdu)));
      this.state = "closing";
      this.socket.destroy();
      return;
    }
    throw new PduError(
      `unexpected PDU type 0x${(type ?? 0).toString(16)} while ${this.state}`,
      ABORT_REASON.UNEXPECTED_PDU,
    );
  }

  // ---------------------------------------------------------------- negotiation

  private onAssociateRq(pdu: Buffer): void {
    ({ calledAe: this.calledAe, callingAe: this.callingAe } = peekAeTitles(pdu)); // for the log, if refused
    const rq = parseAssociateRq(pdu);
    const allow = this.ctx.allowedCallingAeTitles;
    if (allow.length > 0 && !allow.includes(rq.callingAe)) {
      throw new AssociateRejection("calling AE title not allowed", {
        result: REJECT.PERMANENT,
        source: REJECT.SOURCE_USER,
        reason: REJECT.USER_CALLING_AE,
      });
    }
    if (!this.ctx.acquire(this)) {
      throw new AssociateRejection("too many associations", {
        result: REJECT.TRANSIENT,
        source: REJECT.SOURCE_PRESENTATION,
        reason: REJECT.PRESENTATION_LOCAL_LIMIT,
      });
    }
    this.accepted = true;
    const results: AcceptResult[] = rq.contexts.map((pc) => {
      const rejected = (result: number): AcceptResult => ({
        id: pc.id,
        result,
        transferSyntax: pc.transferSyntaxes[0] ?? "",
      });
      if (this.ctx.verificationOnly && pc.abstractSyntax !== VERIFICATION_SOP_CLASS) return rejected(3);
      if (!isAcceptedAbstractSyntax(pc.abstractSyntax)) return rejected(3);
      const ts = chooseTransferSyntax(pc.transferSyntaxes);
      if (ts === undefined) return rejected(4);
      this.contexts.set(pc.id, ts);
      return { id: pc.id, result: 0, transferSyntax: ts };
    });
    this.state = "open";
    this.setTimer(this.ctx.idleMs);
    this.socket.write(
      encodeAssociateAc({
        calledAe: rq.calledAe,
        callingAe: rq.callingAe,
        contexts: results,
        // What we can receive; our own PDUs are responses of a few hundred bytes, below any limit.
        maxPduLength: this.ctx.maxPduLength,
        implementationClassUid: this.ctx.implementation.classUid,
        implementationVersionName: this.ctx.implementation.versionName,
      }),
    );
    this.ctx.log.debug(
      { event: "association-accepted", ...this.who(), presentationContexts: this.contexts.size },
      "association accepted",
    );
  }

  private reject(rejection: AssociateRejection): void {
    this.finish("rejected", rejection.message);
    this.ctx.onRejected();
    this.state = "closing";
    this.socket.end(encodeAssociateRj(rejection.reject));
    this.setTimer(this.ctx.artimMs);
  }

  private abort(reason: number, message: string): void {
    if (this.state === "closing") return;
    this.finish("error", message);
    this.state = "closing";
    this.dropIncoming();
    if (this.socket.writable) {
      this.socket.end(encodeAbort(2, reason));
      this.setTimer(Math.min(ABORT_LINGER_MS, this.ctx.artimMs));
    } else this.socket.destroy();
  }

  private onReleaseRq(): void {
    this.state = "releasing";
    void this.settle().then(() => {
      this.finish("released");
      if (this.socket.destroyed) return;
      this.state = "closing";
      this.socket.end(encodeReleaseRp());
      this.setTimer(this.ctx.artimMs);
    });
  }

  // ---------------------------------------------------------------- data

  private pdvBegin(pcId: number, isCommand: boolean, isLast: boolean): void {
    if (this.state !== "open")
      throw new PduError(`P-DATA-TF while ${this.state}`, ABORT_REASON.UNEXPECTED_PDU);
    if (!this.contexts.has(pcId))
      throw new PduError(`PDV on presentation context ${pcId}, which was not accepted`);
    if (isCommand) {
      if (this.current !== undefined) throw new PduError("command while a dataset is still arriving");
    } else {
      if (this.current === undefined) throw new PduError("dataset fragment without a command");
      if (this.current.pcId !== pcId) throw new PduError("dataset fragment on another presentation context");
    }
    this.pdv = { pcId, isCommand, isLast };
  }

  private pdvData(bytes: Buffer): void {
    if (this.pdv?.isCommand) {
      this.commandBytes += bytes.length;
      if (this.commandBytes > MAX_COMMAND_SET_BYTES) throw new PduError("command set too large");
      this.commandChunks.push(Buffer.from(bytes)); // small: copy rather than pin the socket chunk
    } else if (this.current !== undefined && !this.current.drop) {
      this.current.collector.add(bytes);
      if (this.current.collector.spill !== undefined) this.checkSpill(this.current);
    }
  }

  /**
   * A large dataset goes to disk as it arrives: every SPILL_SPACE_CHECK_BYTES it is held to the
   * free-space floor, and refused (its spill file removed, the rest read and dropped) when below.
   */
  private checkSpill(current: Incoming): void {
    const grown = current.collector.length - current.spaceCheckedAt;
    if (grown < SPILL_SPACE_CHECK_BYTES) return;
    current.spaceCheckedAt = current.collector.length;
    this.ctx.store.spilled(grown);
    const refused = this.ctx.store.spaceRefusal(0);
    if (refused === undefined) return;
    current.collector.discard();
    current.drop = true;
    current.refused = refused;
  }

  private pdvEnd(): void {
    const pdv = this.pdv;
    this.pdv = undefined;
    if (pdv === undefined || !pdv.isLast) return;
    if (!pdv.isCommand) {
      const current = this.current as Incoming;
      this.current = undefined;
      if (current.drop) {
        current.collector.discard();
        if (current.refused !== undefined) this.answerRefused(current, current.refused);
      } else this.runStore(current);
      return;
    }
    const bytes =
      this.commandChunks.length === 1 ? this.commandChunks[0]! : Buffer.concat(this.commandChunks);
    this.commandChunks = [];
    this.commandBytes = 0;
    this.onCommand(pdv.pcId, readRequest(bytes));
  }

  private onCommand(pcId: number, cmd: CommandInfo): void {
    if (cmd.commandField === COMMAND_FIELD.C_STORE_RQ && cmd.hasDataset) {
      // Below the floor already: the dataset is read and dropped, neither buffered nor spilled.
      const refused = this.ctx.store.spaceRefusal(0);
      const collector = this.newCollector(this.requestInfo(pcId, cmd));
      this.current = {
        pcId,
        cmd,
        collector,
        drop: refused !== undefined,
        ...(refused && { refused }),
        spaceCheckedAt: 0,
      };
      return;
    }
    if (cmd.commandField === COMMAND_FIELD.C_STORE_RQ) {
      this.failed++;
      this.ctx.onStoreOutcome(false);
      this.respond(pcId, cmd, STORE_STATUS.CannotUnderstand, "no dataset");
      return;
    }
    if (cmd.commandField === COMMAND_FIELD.C_ECHO_RQ) {
      this.respond(pcId, cmd, STORE_STATUS.Success);
      return;
    }
    if (cmd.commandField === COMMAND_FIELD.C_CANCEL_RQ || (cmd.commandField & RESPONSE_BIT) !== 0) return;
    // Any other request on a storage or verification context: answer, then read and drop its dataset.
    this.respond(pcId, cmd, STATUS_UNRECOGNIZED_OPERATION, "unsupported operation");
    if (cmd.hasDataset) {
      const collector = this.newCollector(this.requestInfo(pcId, cmd));
      this.current = { pcId, cmd, collector, drop: true, spaceCheckedAt: 0 };
    }
  }

  private newCollector(info: StoreRequestInfo): DatasetCollector {
    return new DatasetCollector({
      spillThreshold: this.ctx.spillThreshold,
      spillPath: () => this.ctx.store.tmpPath(),
      spillHeader: () => this.ctx.store.header(info),
    });
  }

  private requestInfo(pcId: number, cmd: CommandInfo): StoreRequestInfo {
    return {
      callingAe: this.callingAe,
      calledAe: this.calledAe,
      peer: this.peer,
      sopClassUid: cmd.affectedSopClassUid,
      sopInstanceUid: cmd.affectedSopInstanceUid,
      transferSyntaxUid: this.contexts.get(pcId) ?? "",
    };
  }

  /** Persist, enqueue, then answer; the response goes out only when both are done. */
  private runStore({ pcId, cmd, collector }: Incoming): void {
    this.bytes += collector.length;
    const work = this.ctx.store
      .store(collector, this.requestInfo(pcId, cmd))
      .then((outcome) => {
        const ok = outcome.status === STORE_STATUS.Success;
        if (ok) this.stored++;
        else this.failed++;
        this.ctx.onStoreOutcome(ok, collector.length);
        this.respond(pcId, cmd, outcome.status, outcome.comment);
      })
      .catch((err: unknown) => {
        this.failed++;
        this.ctx.onStoreOutcome(false);
        this.ctx.log.error(
          { event: "store-crashed", ...this.who(), err: String(err) },
          "store failed unexpectedly",
        );
        this.respond(pcId, cmd, STORE_STATUS.OutOfResources, "internal error");
      })
      .finally(() => this.inflight.delete(work));
    this.inflight.add(work);
  }

  private answerRefused({ pcId, cmd }: Incoming, outcome: StoreOutcome): void {
    this.failed++;
    this.ctx.onStoreOutcome(false);
    this.respond(pcId, cmd, outcome.status, outcome.comment);
  }

  private respond(pcId: number, cmd: CommandInfo, status: number, comment?: string): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    const response = encodeResponse({
      commandField: cmd.commandField | RESPONSE_BIT,
      messageIdBeingRespondedTo: cmd.messageId,
      affectedSopClassUid: cmd.affectedSopClassUid,
      affectedSopInstanceUid: cmd.affectedSopInstanceUid,
      status,
      ...(status !== STORE_STATUS.Success && comment !== undefined && { errorComment: comment }),
    });
    this.socket.write(commandPdu(pcId, response));
  }

  // ---------------------------------------------------------------- end

  /** The peer went away or we aborted mid-dataset: nothing of it was acknowledged. */
  private dropIncoming(): void {
    this.current?.collector.discard();
    this.current = undefined;
  }

  private onClose(): void {
    clearTimeout(this.timer);
    this.state = "closing";
    this.dropIncoming();
    if (this.accepted) this.ctx.release(this);
    const event = {
      event: "association",
      ...this.who(),
      result: this.ended ?? "closed",
      reason: this.reason,
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

/** A request's fields; UIDs are cut at 80 characters (64 is the maximum: longer ones stay invalid). */
function readRequest(bytes: Buffer): CommandInfo {
  let set;
  try {
    set = parseCommand(bytes);
  } catch (err) {
    throw new PduError(`malformed command set: ${(err as Error).message}`);
  }
  const commandField = set.us(0x0100);
  if (commandField === undefined) throw new PduError("command set without CommandField");
  const uid = (element: number) => (set.text(element) ?? "").slice(0, 80).trim();
  return {
    commandField,
    messageId: set.us(0x0110) ?? 0,
    affectedSopClassUid: uid(0x0002),
    affectedSopInstanceUid: uid(0x1000),
    hasDataset: (set.us(0x0800) ?? NO_DATASET) !== NO_DATASET,
  };
}
