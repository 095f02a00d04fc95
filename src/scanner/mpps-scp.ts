/**
 * The MPPS SCP (the original's ppsscpfs on port 4007): N-CREATE and N-SET of Modality Performed
 * Procedure Steps, and C-ECHO, on dcmjs-dimse's Scp behind an {@link AssociateGate} and the
 * receiver's admission limits. Its own `net.Server` (bound host, TCP no-delay), started with the
 * receiver role when scanners.mpps.enabled. Each message is matched to a scanner of scanners.list by
 * its calling AE title; a step is answered only after it is stored (Redis), and an in-progress step
 * starts (or re-checks) the study's pull. Messages from unknown callers are answered Success and
 * dropped, so a scanner console shows no errors for patients that are not ours. Any called AE title
 * is accepted, as by the receiver.
 */
import { randomUUID } from "node:crypto";
import net from "node:net";
import dimse from "dcmjs-dimse";
import type { Redis } from "ioredis";
import type { FionaConfig } from "../config/schema.js";
import { Admission, peerAddress } from "../dimse/admission.js";
import { AssociateGate } from "../dimse/associate-gate.js";
import { routeLibraryLogging } from "../dimse/library-log.js";
import { MAX_ASSOCIATE_RQ_BYTES } from "../dimse/pdu.js";
import { log as defaultLog, type Logger } from "../log.js";
import { createRedis } from "../queues/connection.js";
import { createQueue, QUEUES, type TypedQueue } from "../queues/index.js";
import { enqueuePull, recheckNow } from "./enqueue.js";
import { MppsStore } from "./mpps-store.js";
import {
  MPPS_SOP_CLASS,
  MPPS_STATUS,
  MppsError,
  applySet,
  stepFromCreate,
  type Elements,
  type MppsStep,
} from "./mpps-step.js";

const { Scp, constants } = dimse;
const { PresentationContextResult, TransferSyntax, SopClass } = constants;
type Association = dimse.association.Association;
type NCreateRequest = dimse.requests.NCreateRequest;
type NSetRequest = dimse.requests.NSetRequest;
type CEchoRequest = dimse.requests.CEchoRequest;

const ACCEPTED_SYNTAXES = [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian];

export interface MppsScpHandle {
  readonly port: number;
  close(): Promise<void>;
}

export interface MppsScpDeps {
  log?: Logger;
  /** Listen port (0 for an ephemeral one); default scanners.mpps.port. */
  port?: number;
  now?: () => Date;
}

interface MppsContext {
  cfg: FionaConfig;
  store: MppsStore;
  queue: TypedQueue<"scanner-pull">;
  log: Logger;
  now: () => Date;
}

/** A UID the SCP assigns when the N-CREATE leaves it to the SCP (PS3.7 10.1.5.1). */
const newUid = () => `2.25.${BigInt(`0x${randomUUID().replace(/-/g, "")}`).toString()}`;

class MppsAssociation extends Scp {
  private callingAe = "";
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    readonly socket: net.Socket,
    private readonly ctx: MppsContext,
  ) {
    // The gate in front (startMppsScp) enforced the ARTIM time; connectTimeout is dcmjs-dimse's
    // socket idle timeout, which ends an association that goes quiet.
    super(socket, { associationTimeout: 30_000, pduTimeout: 60_000, connectTimeout: 180_000 });
    this.on("networkError", () => socket.destroy());
  }

  override associationRequested(association: Association): void {
    this.callingAe = association.getCallingAeTitle().trim();
    for (const { context } of association.getPresentationContexts()) {
      const abstract = context.getAbstractSyntaxUid();
      if (abstract !== MPPS_SOP_CLASS && abstract !== SopClass.Verification) {
        context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
        continue;
      }
      const ts = ACCEPTED_SYNTAXES.find((t) => context.getTransferSyntaxUids().includes(t));
      if (ts === undefined) context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
      else context.setResult(PresentationContextResult.Accept, ts);
    }
    this.sendAssociationAccept();
  }

  override associationReleaseRequested(): void {
    void Promise.allSettled([...this.inflight]).then(() => {
      this.sendAssociationReleaseResponse();
      this.socket.end();
    });
  }

  override cEchoRequest(request: CEchoRequest, callback: (r: dimse.responses.CEchoResponse) => void): void {
    const response = dimse.responses.CEchoResponse.fromRequest(request);
    response.setStatus(constants.Status.Success);
    callback(response);
  }

  override nCreateRequest(
    request: NCreateRequest,
    callback: (r: dimse.responses.NCreateResponse) => void,
  ): void {
    const sop = request.getAffectedSopInstanceUid() || newUid();
    const response = dimse.responses.NCreateResponse.fromRequest(request);
    response.setAffectedSopInstanceUid(sop);
    this.track(
      this.answer("n-create", sop, response, async (scanner) => {
        const step = stepFromCreate(elementsOf(request), {
          sopInstanceUid: sop,
          scanner,
          callingAe: this.callingAe,
          now: this.ctx.now(),
        });
        await this.ctx.store.create(step);
        return step;
      }).then(() => callback(response)),
    );
  }

  override nSetRequest(request: NSetRequest, callback: (r: dimse.responses.NSetResponse) => void): void {
    const sop = request.getRequestedSopInstanceUid();
    const response = dimse.responses.NSetResponse.fromRequest(request);
    this.track(
      this.answer("n-set", sop, response, async () => {
        const step = await this.ctx.store.get(sop);
        if (!step) throw new MppsError(MPPS_STATUS.NoSuchSopInstance, "no such step");
        const next = applySet(step, elementsOf(request), this.ctx.now());
        await this.ctx.store.update(next);
        return next;
      }).then(() => callback(response)),
    );
  }

  private track(p: Promise<void>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /** Run `handle` for a known scanner and set the response status; a step that is stored drives its pull. */
  private async answer(
    op: "n-create" | "n-set",
    sop: string,
    response: dimse.responses.NCreateResponse | dimse.responses.NSetResponse,
    handle: (scanner: string) => Promise<MppsStep>,
  ): Promise<void> {
    const scanner = this.ctx.cfg.scanners.list.find((s) => s.aeTitle === this.callingAe);
    const who = { event: `mpps-${op}`, callingAe: this.callingAe, sopInstanceUid: sop };
    if (!scanner) {
      this.ctx.log.warn(
        { ...who, outcome: "ignored" },
        "MPPS from an AE title not in scanners.list; not stored",
      );
      response.setStatus(MPPS_STATUS.Success);
      return;
    }
    let step: MppsStep;
    try {
      step = await handle(scanner.name);
    } catch (e) {
      const status = e instanceof MppsError ? e.status : MPPS_STATUS.ProcessingFailure;
      const message = e instanceof MppsError ? e.message : "the step could not be stored";
      this.ctx.log.warn({ ...who, status, err: (e as Error).message }, "MPPS request failed");
      response.setStatus(status);
      response.setErrorComment(message.slice(0, 64));
      return;
    }
    response.setStatus(MPPS_STATUS.Success);
    this.ctx.log.info(
      { ...who, scanner: scanner.name, status: step.status, studyInstanceUids: step.studyInstanceUids },
      "MPPS step stored",
    );
    await this.startPulls(step).catch((e: Error) =>
      this.ctx.log.error({ ...who, err: e.message }, "MPPS step stored but its pull was not queued"),
    );
  }

  private async startPulls(step: MppsStep): Promise<void> {
    for (const study of step.studyInstanceUids) {
      const jobId = await enqueuePull(this.ctx.queue, {
        studyInstanceUid: study,
        scanner: step.scanner,
        trigger: "mpps",
      });
      // The step ended: let a waiting pull check at once instead of after its recheck delay.
      const promoted =
        step.status !== "IN PROGRESS" && (await recheckNow(this.ctx.queue, study).catch(() => false));
      this.ctx.log.info(
        { event: "scanner-pull-queued", studyInstanceUid: study, jobId, promoted },
        "scanner pull queued",
      );
    }
  }
}

/** dcmjs-dimse naturalizes the request dataset; absent dataset means no attributes. */
const elementsOf = (request: NCreateRequest | NSetRequest): Elements =>
  (request.getDataset()?.getElements() ?? {}) as Elements;

export async function startMppsScp(cfg: FionaConfig, deps: MppsScpDeps = {}): Promise<MppsScpHandle> {
  const log = (deps.log ?? defaultLog).child({ component: "mpps" });
  routeLibraryLogging(deps.log ?? defaultLog);
  const redis: Redis = createRedis(cfg.redis, "producer");
  const queue = createQueue(QUEUES.scannerPull, redis, cfg.redis.prefix);
  // The producer connection fails fast while not connected: give it a moment before taking steps.
  const ready = await Promise.race([
    queue.waitUntilReady().then(
      () => true,
      () => false,
    ),
    new Promise<boolean>((r) => setTimeout(() => r(false), 3000).unref()),
  ]);
  if (!ready) log.warn({ event: "redis-not-ready" }, "Redis not reachable: MPPS messages fail until it is");
  const ctx: MppsContext = {
    cfg,
    store: new MppsStore(redis, cfg.redis.prefix, cfg.scanners.giveUpHours),
    queue,
    log,
    now: deps.now ?? (() => new Date()),
  };
  const live = new Set<net.Socket>();
  const admission = new Admission<AssociateGate>(cfg.receiver, log);
  const server = net.createServer({ noDelay: true }, (socket) => {
    socket.setNoDelay(true);
    socket.on("error", () => {}); // reported by the gate or the association; never unhandled
    if (admission.refusal(peerAddress(socket)) !== undefined) return void socket.destroy();
    live.add(socket);
    socket.once("close", () => live.delete(socket));
    const gate = new AssociateGate(socket, {
      artimMs: cfg.receiver.artimSeconds * 1000,
      maxAssociateRqBytes: MAX_ASSOCIATE_RQ_BYTES,
      log,
      onValid: (s) => {
        try {
          new MppsAssociation(s, ctx);
        } catch (e) {
          log.error({ event: "mpps-association-setup-failed", err: String(e) }, "cannot serve connection");
          s.destroy();
        }
      },
    });
    admission.add(gate, socket);
  });
  const host = cfg.scanners.mpps.host ?? cfg.dicomHost;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(deps.port ?? cfg.scanners.mpps.port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  log.info({ event: "mpps-listening", host, port }, "MPPS SCP listening");
  return {
    port,
    async close() {
      server.close();
      // Let the last answers go out, then drop what is left.
      await new Promise((r) => setTimeout(r, live.size ? 500 : 0));
      for (const s of live) s.destroy();
      await queue.close();
      redis.disconnect();
    },
  };
}
