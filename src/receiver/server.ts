/**
 * Start and stop the C-STORE/C-ECHO SCP: a plain `net.Server` (bound to cfg.dicomHost, TCP no-delay)
 * whose connections are served by {@link FionaScp}. dcmjs-dimse's own Server is not used: it cannot
 * bind to a host, set no-delay, limit associations or close gracefully.
 */
import net from "node:net";
import dimse from "dcmjs-dimse";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { FionaConfig } from "../config/schema.js";
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from "../dicom/part10.js";
import { log as defaultLog } from "../log.js";
import { SitePaths } from "../paths.js";
import { createRedis } from "../queues/connection.js";
import { createQueue, QUEUES, type IngestJob, type TypedQueue } from "../queues/index.js";
import { FionaScp, type ScpContext } from "./scp.js";
import { InstanceStore } from "./store.js";

export interface ReceiverDeps {
  /** Parent logger (default: the process logger from src/log.ts); events carry component "receiver". */
  log?: Logger;
  /** Producer connection (fail-fast); created from cfg.redis.url when absent. Not closed by close() if given. */
  redis?: Redis;
  /** Ingest queue; created on `redis` with cfg.redis.prefix when absent. Not closed by close() if given. */
  queue?: TypedQueue<"ingest">;
  /** Replaces the queue entirely (tests, or another transport). Must reject when the job was not stored. */
  enqueue?: (job: IngestJob) => Promise<void>;
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
  /** Handle P-DATA without dcmjs-dimse's per-message dcmjs encode/decode (default true); see scp.ts. */
  fastPath?: boolean;
  /** dcmjs-dimse timeouts (ms): before A-ASSOCIATE-RQ, between PDUs, socket idle. */
  timeouts?: { associationMs?: number; pduMs?: number; idleMs?: number };
}

export interface ReceiverStats {
  associationsAccepted: number;
  associationsRejected: number;
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

/** Route dcmjs-dimse's loglevel output (warnings and errors only) into pino. Global to the process. */
function routeDimseLogging(log: Logger): void {
  const dlog = dimse.log;
  dlog.methodFactory = (methodName) => {
    return (...args: unknown[]) => {
      const msg = args.map(String).join(" ");
      if (methodName === "error") log.warn({ event: "dimse-error" }, msg);
      else if (methodName === "warn") log.warn({ event: "dimse-warn" }, msg);
      else log.trace({ event: "dimse" }, msg);
    };
  };
  dlog.setLevel("warn");
  dlog.rebuild();
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  p.catch(() => {}); // a late rejection after the timeout is not unhandled
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export async function startReceiver(cfg: FionaConfig, deps: ReceiverDeps = {}): Promise<ReceiverHandle> {
  const log = (deps.log ?? defaultLog).child({ component: "receiver" });
  routeDimseLogging(log);
  dimse.Implementation.setImplementationClassUid(IMPLEMENTATION_CLASS_UID);
  dimse.Implementation.setImplementationVersion(IMPLEMENTATION_VERSION_NAME);
  dimse.Implementation.setMaxPduLength(cfg.receiver.maxPduLength);

  const enqueueTimeoutMs = deps.enqueueTimeoutMs ?? 5000;
  let ownedRedis: Redis | undefined;
  let ownedQueue: TypedQueue<"ingest"> | undefined;
  let detachListeners = () => {};
  let enqueue = deps.enqueue;
  if (enqueue === undefined) {
    let redis = deps.redis;
    let queue = deps.queue;
    if (queue === undefined) {
      if (redis === undefined) redis = ownedRedis = createRedis(cfg.redis.url, "producer");
      queue = ownedQueue = createQueue(QUEUES.ingest, redis, cfg.redis.prefix);
    }
    let lastRedisError = 0;
    const onRedisError = (err: Error) => {
      if (Date.now() - lastRedisError < 10_000) return;
      lastRedisError = Date.now();
      log.warn({ event: "redis-error", err: err.message }, "ingest queue connection error");
    };
    const q = queue;
    const r = redis;
    r?.on("error", onRedisError);
    q.on("error", onRedisError);
    detachListeners = () => {
      r?.off("error", onRedisError);
      q.off("error", onRedisError);
    };
    enqueue = async (job: IngestJob) => {
      // A producer that is not connected fails at once instead of waiting for BullMQ's (re)connect.
      if (r !== undefined && r.status !== "ready") throw new Error(`Redis connection is ${r.status}`);
      await withTimeout(q.add(QUEUES.ingest, job), enqueueTimeoutMs, "enqueue");
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
  const store = new InstanceStore({ paths, enqueue, fsync: cfg.receiver.fsync, log });
  store.prepare();

  const live = new Set<FionaScp>();
  const active = new Set<FionaScp>();
  const counts = { accepted: 0, rejected: 0, stored: 0, failed: 0, bytes: 0 };
  let closing = false;
  let nextId = 0;
  let lastActivityMs = 0;
  const maxAssociations = cfg.receiver.maxAssociations;

  const ctx: ScpContext = {
    store,
    log,
    allowedCallingAeTitles: cfg.receiver.allowedCallingAeTitles,
    maxPduLength: cfg.receiver.maxPduLength,
    spillThreshold: deps.spillThreshold ?? 32 * 1024 * 1024,
    fastPath: deps.fastPath ?? true,
    acquire(scp) {
      if (closing || active.size >= maxAssociations) return false;
      active.add(scp);
      counts.accepted++;
      return true;
    },
    release(scp) {
      active.delete(scp);
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

  const scpOptions = {
    associationTimeout: deps.timeouts?.associationMs ?? 30_000,
    pduTimeout: deps.timeouts?.pduMs ?? 60_000,
    connectTimeout: deps.timeouts?.idleMs ?? 180_000,
  };

  const server = net.createServer(
    { noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 },
    (socket) => {
      socket.setNoDelay(true);
      if (closing) {
        socket.destroy();
        return;
      }
      let scp: FionaScp;
      try {
        scp = new FionaScp(socket, ctx, scpOptions);
      } catch (err) {
        log.error({ event: "association-setup-failed", err: String(err) }, "cannot serve connection");
        socket.destroy();
        return;
      }
      live.add(scp);
      socket.once("close", () => live.delete(scp));
      socket.on("data", () => (lastActivityMs = Date.now()));
    },
  );
  // Unnegotiated TCP connections beyond this are dropped by the kernel-facing side of Node.
  server.maxConnections = maxAssociations * 2 + 16;
  server.on("error", (err) =>
    log.error({ event: "receiver-server-error", err: err.message }, "DICOM server error"),
  );

  const host = deps.host ?? cfg.dicomHost;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    server.listen(deps.port ?? cfg.dicomPort, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : (deps.port ?? cfg.dicomPort);
  log.info({ event: "receiver-listening", host, port, aeTitle: cfg.aeTitle }, "DICOM receiver listening");

  let closed: Promise<void> | undefined;
  const closeTimeoutMs = deps.closeTimeoutMs ?? 10_000;
  const close = async () => {
    closing = true;
    server.close();
    const deadline = Date.now() + closeTimeoutMs;
    while (active.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const remaining = [...live];
    if (active.size > 0) {
      log.warn(
        { event: "receiver-close-abort", associations: active.size },
        "aborting associations on close",
      );
    }
    await Promise.race([
      Promise.allSettled(remaining.map((s) => s.settle())),
      new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now()) + 1000)),
    ]);
    for (const s of remaining) s.socket.destroy();
    if (ownedQueue !== undefined) await withTimeout(ownedQueue.close(), 2000, "queue close").catch(() => {});
    if (ownedRedis !== undefined) ownedRedis.disconnect();
    detachListeners();
    log.info({ event: "receiver-closed", ...stats() }, "DICOM receiver closed");
  };

  function stats(): ReceiverStats {
    return {
      associationsAccepted: counts.accepted,
      associationsRejected: counts.rejected,
      activeAssociations: active.size,
      instancesStored: counts.stored,
      instancesFailed: counts.failed,
      bytesReceived: counts.bytes,
    };
  }

  return {
    port,
    host,
    listening: () => server.listening && !closing,
    activeAssociations: () => active.size,
    lastActivityMs: () => lastActivityMs,
    stats,
    close: () => (closed ??= close()),
  };
}
