/**
 * Start and stop the C-STORE/C-ECHO SCP: a plain TCP listener (cfg.dicomHost:cfg.dicomPort), an
 * optional DICOM TLS listener on a port of its own (cfg.receiver.tls), and a loopback-only listener
 * for this process's heartbeat. Each connection is one {@link ScpAssociation}.
 *
 * Admission control ({@link Admission}) decides before a byte is read; connections that never complete
 * an A-ASSOCIATE-RQ are closed by the association's ARTIM timer. The heartbeat's listener is outside
 * the limits, so a flood measures as a flood, not as a dead receiver.
 */
import fs from "node:fs";
import net from "node:net";
import tls from "node:tls";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { FionaConfig } from "../config/schema.js";
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from "../dicom/part10.js";
import { log as defaultLog } from "../log.js";
import { SitePaths } from "../paths.js";
import { createRedis } from "../queues/connection.js";
import { createQueue, QUEUES, type IngestJob, type TypedQueue } from "../queues/index.js";
import { replicatedWrites } from "../queues/replicas.js";
import { Admission, peerAddress, rateLimitedWarn } from "../dimse/admission.js";
import { BCP195_CIPHERS } from "../dimse/connect.js";
import { addIngestJob } from "../ingest/pending.js";
import { SpaceGuard } from "../fs/space.js";
import { ScpAssociation, type AssociationContext } from "./association.js";
import { InstanceStore } from "./store.js";

export interface ReceiverDeps {
  /** Parent logger (default: the process logger from src/log.ts); events carry component "receiver". */
  log?: Logger;
  /** Producer connection (fail-fast); created from cfg.redis when absent. Not closed by close() if given. */
  redis?: Redis;
  /** Ingest queue; created on `redis` with cfg.redis.prefix when absent. Not closed by close() if given. */
  queue?: TypedQueue<"ingest">;
  /** Replaces the queue entirely (tests, or another transport). Must reject when the job was not stored. */
  enqueue?: (job: IngestJob, studyInstanceUid: string) => Promise<void>;
  /** An enqueue slower than this counts as failed (default 5000 ms). */
  enqueueTimeoutMs?: number;
  /** close() waits this long for peers to release their associations before aborting them (default 10 s). */
  closeTimeoutMs?: number;
  /**
   * Datasets larger than this are written to a temporary file while they arrive (default 32 MiB), which
   * bounds memory to about maxAssociations x spillThreshold.
   */
  spillThreshold?: number;
  /** Listen port (0 for an ephemeral one); default cfg.dicomPort. */
  port?: number;
  /** Listen address; default cfg.dicomHost. */
  host?: string;
  /** DICOM TLS listen port (0 for an ephemeral one); default cfg.receiver.tls.port. Needs cfg.receiver.tls. */
  tlsPort?: number;
}

export interface ReceiverStats {
  associationsAccepted: number;
  associationsRejected: number;
  /** Connections closed by admission control (per-address or total limit), unread. */
  connectionsRefused: number;
  activeAssociations: number;
  instancesStored: number;
  instancesFailed: number;
  /** Dataset bytes of the instances stored. */
  bytesReceived: number;
}

export interface ReceiverHandle {
  /** The bound port (useful with port 0). */
  readonly port: number;
  readonly host: string;
  /** The bound DICOM TLS port, when cfg.receiver.tls is set. */
  readonly tlsPort: number | undefined;
  /** Loopback-only listener outside the admission limits, for this process's own heartbeat. */
  readonly echoEndpoint: { host: string; port: number };
  /** True while the DICOM port is open (false after close()). */
  listening(): boolean;
  /** Associations accepted and not yet ended. */
  activeAssociations(): number;
  /** When bytes last arrived on any connection (epoch ms, 0 = never): the heartbeat skips while recent. */
  lastActivityMs(): number;
  stats(): ReceiverStats;
  /**
   * Stop accepting connections, reject new association requests, wait (bounded by closeTimeoutMs) for
   * active associations to be released, then abort the rest; closes the Redis connection it created.
   */
  close(): Promise<void>;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  p.catch(() => {}); // a late rejection after the timeout is not unhandled
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function listen(server: net.Server, port: number, host: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const address = server.address();
      resolve(typeof address === "object" && address !== null ? address.port : port);
    });
  });
}

export async function startReceiver(cfg: FionaConfig, deps: ReceiverDeps = {}): Promise<ReceiverHandle> {
  const log = (deps.log ?? defaultLog).child({ component: "receiver" });
  const rx = cfg.receiver;
  const enqueueTimeoutMs = deps.enqueueTimeoutMs ?? 5000;
  let ownedRedis: Redis | undefined;
  let ownedQueue: TypedQueue<"ingest"> | undefined;
  let enqueue = deps.enqueue;
  if (enqueue === undefined) {
    let redis = deps.redis;
    let queue = deps.queue;
    if (queue === undefined) {
      if (redis === undefined) redis = ownedRedis = createRedis(cfg.redis, "producer");
      queue = ownedQueue = createQueue(QUEUES.ingest, redis, cfg.redis.prefix);
    }
    // Connection errors are logged, rate-limited, by createRedis and createQueue (src/queues/redis-errors.ts).
    const q = queue;
    const r = redis;
    const { waitReplicas, waitTimeoutMs } = cfg.redis;
    if (waitReplicas > 0 && r === undefined)
      throw new Error("redis.waitReplicas needs the queue's connection");
    const replicated = r === undefined ? undefined : replicatedWrites(r, waitReplicas, waitTimeoutMs);
    const add = async (job: IngestJob, studyInstanceUid: string) => {
      // With the connection at hand, the job is also noted pending for its study's arrival.
      if (r === undefined || replicated === undefined) return void (await q.add(QUEUES.ingest, job));
      await replicated(() => addIngestJob(r, cfg.redis.prefix, q, studyInstanceUid, job));
    };
    enqueue = async (job: IngestJob, studyInstanceUid: string) => {
      // A producer that is not connected fails at once instead of waiting for BullMQ's (re)connect.
      if (r !== undefined && r.status !== "ready") throw new Error(`Redis connection is ${r.status}`);
      await withTimeout(add(job, studyInstanceUid), enqueueTimeoutMs, "enqueue");
    };
    const ready = await withTimeout(
      q.waitUntilReady(),
      Math.min(enqueueTimeoutMs, 3000),
      "Redis connect",
    ).then(
      () => true,
      () => false,
    );
    if (!ready) log.warn({ event: "redis-not-ready" }, "Redis not reachable: C-STOREs fail until it is");
  }

  const paths = new SitePaths(cfg.dataDir);
  const space = new SpaceGuard(cfg.dataDir, cfg.disk);
  const store = new InstanceStore({ paths, enqueue, fsync: rx.fsync, log, space });
  store.prepare(cfg.schedules.orphans.graceMinutes * 60_000);

  const admission = new Admission<ScpAssociation>(rx, log);
  const heartbeatConnections = new Set<ScpAssociation>();
  const active = new Set<ScpAssociation>();
  const counts = { accepted: 0, rejected: 0, stored: 0, failed: 0, bytes: 0 };
  let closing = false;
  let nextId = 0;
  let lastActivityMs = 0;

  const ctx: AssociationContext = {
    store,
    log,
    allowedCallingAeTitles: rx.allowedCallingAeTitles,
    maxPduLength: rx.maxPduLength,
    spillThreshold: deps.spillThreshold ?? 32 * 1024 * 1024,
    artimMs: rx.artimSeconds * 1000,
    idleMs: rx.idleSeconds * 1000,
    implementation: { classUid: IMPLEMENTATION_CLASS_UID, versionName: IMPLEMENTATION_VERSION_NAME },
    acquire(association) {
      if (closing || active.size >= rx.maxAssociations) return false;
      active.add(association);
      counts.accepted++;
      return true;
    },
    release(association) {
      active.delete(association);
    },
    nextId: () => ++nextId,
    onStoreOutcome(ok, bytes = 0) {
      if (ok) {
        counts.stored++;
        counts.bytes += bytes;
      } else counts.failed++;
    },
    onRejected() {
      counts.rejected++;
    },
  };

  // The heartbeat's associations take no slot, do not count as activity (ingest yields to those) and
  // can only echo: the loopback listener is outside the limits, so it must not take images.
  const heartbeatCtx: AssociationContext = {
    ...ctx,
    verificationOnly: true,
    acquire: () => !closing,
    release: () => {},
  };

  const serve = (socket: net.Socket, heartbeat = false) => {
    socket.setNoDelay(true);
    socket.on("error", () => {}); // reported by the association once it exists; never unhandled
    if (closing) return void socket.destroy();
    if (!heartbeat) {
      if (admission.refusal(peerAddress(socket)) !== undefined) return void socket.destroy();
    } else if (heartbeatConnections.size >= 4) return void socket.destroy();
    let association: ScpAssociation;
    try {
      association = new ScpAssociation(socket, heartbeat ? heartbeatCtx : ctx);
    } catch (err) {
      log.error({ event: "association-setup-failed", err: String(err) }, "cannot serve connection");
      return void socket.destroy();
    }
    if (heartbeat) {
      heartbeatConnections.add(association);
      socket.once("close", () => heartbeatConnections.delete(association));
    } else {
      admission.add(association, socket);
      socket.on("data", () => (lastActivityMs = Date.now()));
    }
  };

  const servers: net.Server[] = [];
  const serverError = (what: string) => (err: Error) =>
    log.error({ event: "receiver-server-error", listener: what, err: err.message }, "DICOM listener error");

  const plain = net.createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 }, (s) =>
    serve(s),
  );
  // A hard cap below the process's file limit; admission control above keeps well under it.
  plain.maxConnections = rx.maxConnections + 64;
  plain.on("error", serverError("dicom"));
  const host = deps.host ?? cfg.dicomHost;
  const port = await listen(plain, deps.port ?? cfg.dicomPort, host);
  servers.push(plain);

  let tlsPort: number | undefined;
  if (rx.tls !== undefined) {
    const t = rx.tls;
    const secure = tls.createServer(
      {
        cert: fs.readFileSync(t.cert),
        key: fs.readFileSync(t.key),
        ...(t.ca !== undefined && { ca: fs.readFileSync(t.ca) }),
        requestCert: t.verifyClient,
        rejectUnauthorized: t.verifyClient,
        minVersion: t.minVersion,
        ciphers: BCP195_CIPHERS,
        // A handshake is held to the same time as an A-ASSOCIATE-RQ.
        handshakeTimeout: rx.artimSeconds * 1000,
        noDelay: true,
        keepAlive: true,
        keepAliveInitialDelay: 60_000,
      },
      (s) => serve(s),
    );
    secure.maxConnections = rx.maxConnections + 64;
    // Handshakes in progress count against the per-address limit too: a host opening TLS connections
    // and never finishing the handshake holds at most maxConnectionsPerPeer of them, for artimSeconds.
    // A connection is keyed by its remote address and port, which the TLS socket shares with the raw one.
    const handshaking = new Map<string, string>();
    const pendingFrom = (peer: string) => [...handshaking.values()].filter((p) => p === peer).length;
    const keyOf = (s: net.Socket) => `${s.remoteAddress}|${s.remotePort}`;
    secure.on("connection", (raw: net.Socket) => {
      const peer = peerAddress(raw);
      if (pendingFrom(peer) + admission.count(peer) >= rx.maxConnectionsPerPeer) {
        admission.refuse(peer, "maxConnectionsPerPeer");
        return void raw.destroy();
      }
      const key = keyOf(raw);
      handshaking.set(key, peer);
      raw.once("close", () => handshaking.delete(key));
    });
    secure.prependListener("secureConnection", (s: tls.TLSSocket) => handshaking.delete(keyOf(s)));
    const warnHandshake = rateLimitedWarn(log, "tls-handshake-failed", "DICOM TLS handshake failed");
    secure.on("tlsClientError", (err: NodeJS.ErrnoException, s: tls.TLSSocket) =>
      warnHandshake({ peer: peerAddress(s), err: err.code ?? err.message }),
    );
    secure.on("error", serverError("dicom-tls"));
    tlsPort = await listen(secure, deps.tlsPort ?? t.port, t.host ?? host);
    servers.push(secure);
  }

  const loopback = net.createServer({ noDelay: true }, (s) => serve(s, true));
  loopback.on("error", serverError("heartbeat"));
  const echoPort = await listen(loopback, 0, "127.0.0.1");
  servers.push(loopback);

  log.info(
    { event: "receiver-listening", host, port, tlsPort, aeTitle: cfg.aeTitle },
    "DICOM receiver listening",
  );

  const all = () => [...admission.all(), ...heartbeatConnections];
  let closed: Promise<void> | undefined;
  const closeTimeoutMs = deps.closeTimeoutMs ?? 10_000;
  const close = async () => {
    closing = true;
    for (const server of servers) server.close();
    const deadline = Date.now() + closeTimeoutMs;
    while (active.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const remaining = all();
    if (active.size > 0) {
      log.warn(
        { event: "receiver-close-abort", associations: active.size },
        "aborting associations on close",
      );
    }
    await Promise.race([
      Promise.allSettled(remaining.map((a) => a.settle())),
      new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now()) + 1000)),
    ]);
    for (const a of remaining) a.socket.destroy();
    if (ownedQueue !== undefined) await withTimeout(ownedQueue.close(), 2000, "queue close").catch(() => {});
    if (ownedRedis !== undefined) ownedRedis.disconnect();
    log.info({ event: "receiver-closed", ...stats() }, "DICOM receiver closed");
  };

  function stats(): ReceiverStats {
    return {
      associationsAccepted: counts.accepted,
      associationsRejected: counts.rejected,
      connectionsRefused: admission.refused,
      activeAssociations: active.size,
      instancesStored: counts.stored,
      instancesFailed: counts.failed,
      bytesReceived: counts.bytes,
    };
  }

  return {
    port,
    host,
    tlsPort,
    echoEndpoint: { host: "127.0.0.1", port: echoPort },
    listening: () => plain.listening && !closing,
    activeAssociations: () => active.size,
    lastActivityMs: () => lastActivityMs,
    stats,
    close: () => (closed ??= close()),
  };
}
