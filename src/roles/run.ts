import type { FionaConfig } from "../config/schema.js";
import { readDiskSpace } from "../fs/space.js";
import type { Logger } from "../log.js";
import type { QueueName } from "../queues/index.js";
import { startReceiverMetrics } from "../metrics/receiver.js";
import { startReceiver, type ReceiverHandle } from "../receiver/server.js";
import { startMppsScp } from "../scanner/mpps-scp.js";
import { startHeartbeat } from "../schedules/heartbeat.js";
import { startScheduler } from "../schedules/scheduler.js";
import { startWeb } from "../web/server.js";
import { startDurabilityMonitor, type DurabilityMonitor } from "../queues/durability-monitor.js";
import { ensureRedis, type RedisHandle } from "./local-redis.js";
import { installProcessLogging } from "./process-logging.js";
import { startWorkersThread } from "./workers-host.js";
import { startWorkers, type WorkersHandle } from "./workers.js";

export interface RoleSelection {
  receiver?: boolean;
  workers?: QueueName[];
  web?: boolean;
  /** Upsert every job scheduler and keep them (fiona scheduler, fiona start). */
  scheduler?: boolean;
  /** Start a child redis-server when none answers (fiona start). */
  startRedis?: boolean;
}

export interface Running {
  close(): Promise<void>;
}

/** Start the selected roles in this process and stop them in reverse order on SIGTERM/SIGINT. */
export async function runRoles(cfg: FionaConfig, sel: RoleSelection, log: Logger): Promise<Running> {
  const redis: RedisHandle = await ensureRedis(
    cfg.redis,
    cfg.dataDir,
    log,
    !!sel.startRedis && cfg.redis.startLocal,
  );
  const stops: Array<() => Promise<void>> = [() => redis.stop()];
  // From here on every line this process writes is one JSON event (src/roles/process-logging.ts).
  installProcessLogging(log);
  let workers: WorkersHandle | undefined;
  let receiver: ReceiverHandle | undefined;
  try {
    // Every role checks that Redis persists and does not evict, and keeps checking (docs/operations.md).
    const durability = await startDurabilityMonitor(cfg, log);
    stops.push(() => durability.close());
    if (sel.workers?.length) {
      // With the receiver in this process, workers get a thread of their own.
      workers = sel.receiver
        ? await startWorkersThread(cfg, log, sel.workers)
        : await startWorkers(cfg, log, sel.workers);
      stops.push(() => workers!.close());
    }
    if (sel.receiver) {
      receiver = await startReceiver(cfg, { log });
      // Stopped after the receiver (stops run in reverse), so its last counts are flushed.
      stops.push(startReceiverMetrics(cfg, receiver.stats).close);
      stops.push(() => receiver!.close());
      const heartbeat = await startHeartbeat(cfg, receiver, log, () => exitForRestart());
      stops.push(() => heartbeat.close());
      if (cfg.scanners.mpps.enabled) stops.push((await startMppsScp(cfg, { log })).close);
    }
    if (sel.scheduler) {
      const scheduler = await startScheduler(cfg, log);
      stops.push(() => scheduler.close());
    }
    if (workers && receiver && cfg.ingest.yieldToReceiver) {
      const timer = yieldToReceiver(receiver, workers);
      stops.push(async () => clearInterval(timer));
    }
    if (sel.web) {
      const web = await startWeb({
        config: cfg,
        readiness: async () => readiness(cfg, durability, workers, receiver),
      });
      log.info({ url: web.url }, "web listening");
      stops.push(() => web.close());
    }
  } catch (e) {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    throw e;
  }

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Receiver first (no new associations), then workers finish their active jobs, then Redis.
      for (const stop of [...stops].reverse()) {
        await stop().catch((e: Error) => log.error({ err: e.message }, "error during shutdown"));
      }
      log.info("stopped");
    })());
  // A failing heartbeat: shut down briefly (a wedged association would hold close() up), exit non-zero.
  const exitForRestart = () =>
    void Promise.race([close(), new Promise((r) => setTimeout(r, 5000))]).finally(() => process.exit(1));
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    process.once(sig, () => {
      log.info({ signal: sig }, "shutting down");
      void close().then(() => process.exit(0));
    });
  }
  return { close };
}

/**
 * On two cores the receiver and ingest compete for CPU; C-STORE latency matters more (senders time
 * out), so while associations are open ingest runs at ingest.concurrencyWhileReceiving (one job at a
 * time by default: it uses what the receiver leaves, measured in BENCHMARKS.md) and at full
 * concurrency as soon as they close.
 */
function yieldToReceiver(receiver: ReceiverHandle, workers: WorkersHandle): NodeJS.Timeout {
  let yielding = false;
  const timer = setInterval(() => {
    const busy = receiver.activeAssociations() > 0;
    if (busy !== yielding) workers.setIngestYielding((yielding = busy));
  }, 50);
  timer.unref();
  return timer;
}

async function readiness(
  cfg: FionaConfig,
  durability: DurabilityMonitor,
  workers: WorkersHandle | undefined,
  receiver: ReceiverHandle | undefined,
) {
  const checks: Record<string, { ok: boolean; detail?: unknown }> = {};
  // Below the free-space floor the receiver refuses images: not ready, whichever role asks.
  const space = await readDiskSpace(cfg.dataDir, cfg.disk).catch(() => undefined);
  checks.disk = space
    ? { ok: !space.belowFloor, detail: { freeBytes: space.freeBytes, floorBytes: space.floorBytes } }
    : { ok: false, detail: "dataDir not readable (statfs failed)" };
  if (workers) {
    const st = workers.status();
    checks.workers = { ok: st.every((w) => w.running && !w.paused), detail: st };
  }
  if (receiver)
    checks.receiver = {
      ok: receiver.listening(),
      detail: { activeAssociations: receiver.activeAssociations() },
    };
  const ready = Object.values(checks).every((c) => c.ok);
  // A Redis that is not durable holds readiness back only with redis.requireDurable.
  const redisDurability = durability.readiness();
  checks.redisDurability = redisDurability.check;
  return { ready: ready && !redisDurability.blocksReadiness, checks };
}
