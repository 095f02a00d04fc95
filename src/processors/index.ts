/**
 * The one binding of every queue to its handler: what runs it (the role), how many jobs at once, and
 * the stage that processes it, or the reason it is off. The queues themselves (names, payloads, job
 * options) are declared in src/queues and know no handlers; `Record<QueueName, …>` makes a queue
 * without a binding a compile error. The pm2 ecosystem and docker-compose group the queues by ROLE_OF
 * (a test checks them), and src/roles/workers.ts starts a Worker for each binding it is asked for.
 *
 * In pipeline order: ingest → arrival → study-arrived → transfer (deidentify → send), then the
 * stages around it.
 */
import type { FlowProducer, Processor, Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { CompiledRules } from "../classify/index.js";
import type { FionaConfig } from "../config/schema.js";
import type { SeriesWriter } from "../ingest/series-writer.js";
import type { Logger } from "../log.js";
import type { SitePaths } from "../paths.js";
import type { QueueName, TypedQueue } from "../queues/index.js";
import type { TransferRegistry } from "../registry/transfers.js";
import type { DeidPool } from "../transfer/deid-pool.js";
import { emitAutomation } from "../automation/emit.js";
import { CouplingRegistry } from "../registry/coupling.js";
import { StudyRegistry } from "../registry/studies.js";
import { MppsStore } from "../scanner/mpps-store.js";
import { diskUsedPercent } from "../schedules/clear-exports.js";
import { uploadStore } from "../wsi/uploads.js";
import { analysisProcessor } from "./analysis.js";
import { arrivalProcessor } from "./arrival.js";
import { automationProcessor } from "./automation.js";
import { cleanupProcessor } from "./cleanup.js";
import { deidentifyProcessor } from "./deidentify.js";
import { exportProcessor } from "./export.js";
import { ingestProcessor, studyActivity } from "./ingest.js";
import { inventoryProcessor } from "./inventory.js";
import { reclassifyProcessor } from "./reclassify.js";
import { redcapPushProcessor } from "./redcap-push.js";
import { redcapSyncProcessor } from "./redcap-sync.js";
import { scannerPullProcessor } from "./scanner-pull.js";
import { sendProcessor } from "./send.js";
import { sftpProcessor } from "./sftp.js";
import { studyArrivedProcessor } from "./study-arrived.js";
import { transferProcessor } from "./transfer.js";
import { settleUpload, wsiProcessor } from "./wsi.js";

export type Role = "receiver" | "worker-ingest" | "worker-transfer" | "worker-jobs";

/** The role whose process works each queue. */
export const ROLE_OF: Record<QueueName, Role> = {
  ingest: "worker-ingest",
  arrival: "worker-ingest",
  "study-arrived": "worker-ingest",
  reclassify: "worker-ingest",
  transfer: "worker-transfer",
  deidentify: "worker-transfer",
  send: "worker-transfer",
  "redcap-push": "worker-jobs",
  "redcap-sync": "worker-jobs",
  analysis: "worker-jobs",
  export: "worker-jobs",
  sftp: "worker-jobs",
  inventory: "worker-jobs",
  "scanner-pull": "worker-jobs",
  automation: "worker-jobs",
  cleanup: "worker-jobs",
  wsi: "worker-jobs",
  heartbeat: "receiver",
};

/** What the stages of one worker process share (built once by src/roles/workers.ts). */
export interface StageContext {
  cfg: FionaConfig;
  log: Logger;
  paths: SitePaths;
  connection: Redis;
  prefix: string;
  registry: StudyRegistry;
  rules: { current(): CompiledRules };
  seriesWriter: SeriesWriter;
  quietMs: number;
  arrivalQueue: TypedQueue<"arrival">;
  studyArrivedQueue: TypedQueue<"study-arrived">;
  analysisQueue: TypedQueue<"analysis">;
  automationQueue: TypedQueue<"automation">;
  transfers: TransferRegistry;
  flow: FlowProducer;
  /** De-identification threads; present when this process works the deidentify queue. */
  pool?: DeidPool;
  /** Present when REDCap is configured. */
  redcapQueues?: { push: TypedQueue<"redcap-push">; sync: TypedQueue<"redcap-sync"> };
  /** Pending jobs on these keep the archive cleanup away from their study. */
  protectingQueues: Queue[];
  /** Re-read the REDCap tables into cfg (a no-op without REDCap). */
  refreshConfig(): Promise<unknown>;
  /** Wrap a handler so that it runs with a freshly refreshed cfg. */
  withConfig(fn: Processor): Processor;
}

export type Binding =
  { handler: Processor; concurrency: number; limiter?: { max: number; duration: number } } | { off: string };

/** Every queue's binding; each is built only when a process works that queue. */
export const STAGES: Record<QueueName, (c: StageContext) => Binding> = {
  ingest: (c) => ({
    handler: ingestProcessor({
      paths: c.paths,
      seriesWriter: c.seriesWriter,
      studyActivity: studyActivity(c.registry, c.arrivalQueue, c.quietMs),
      log: c.log,
    }),
    concurrency: c.cfg.ingest.concurrency,
  }),
  arrival: (c) => ({
    handler: arrivalProcessor({
      paths: c.paths,
      registry: c.registry,
      arrivalQueue: c.arrivalQueue,
      studyArrivedQueue: c.studyArrivedQueue,
      quietMs: c.quietMs,
      log: c.log,
    }),
    concurrency: 4,
  }),
  "study-arrived": (c) => ({ handler: c.withConfig(studyArrivedProcessor(transferDeps(c))), concurrency: 4 }),
  transfer: (c) => ({
    handler: transferProcessor({
      transfers: c.transfers,
      log: c.log,
      automation: { cfg: c.cfg, queue: c.automationQueue },
      ...(c.redcapQueues ? { redcapPush: c.redcapQueues.push } : {}),
      afterRun: settleUpload(c.cfg, uploadStore(c.cfg)),
    }),
    concurrency: 4,
  }),
  deidentify: (c) =>
    c.pool
      ? {
          handler: c.withConfig(deidentifyProcessor({ cfg: c.cfg, paths: c.paths, pool: c.pool })),
          concurrency: 2,
        }
      : { off: "no de-identification threads in this process" },
  send: (c) => ({
    handler: sendProcessor({
      cfg: c.cfg,
      redis: c.connection,
      prefix: c.prefix,
      transfers: c.transfers,
      log: c.log,
    }),
    concurrency: 4,
  }),
  "redcap-push": (c) =>
    c.redcapQueues && c.cfg.redcap
      ? {
          handler: redcapPushProcessor({
            ...redcapStage(c, c.redcapQueues),
            paths: c.paths,
            transfers: c.transfers,
            studies: c.registry,
          }) as Processor,
          concurrency: 4,
          limiter: redcapLimiter(c.cfg.redcap),
        }
      : { off: "REDCap not configured" },
  "redcap-sync": (c) =>
    c.redcapQueues && c.cfg.redcap
      ? {
          handler: redcapSyncProcessor({
            ...redcapStage(c, c.redcapQueues),
            paths: c.paths,
            flow: c.flow,
            transfers: c.transfers,
            redcapPush: c.redcapQueues.push,
            refreshConfig: c.refreshConfig,
          }) as Processor,
          concurrency: 1,
          limiter: redcapLimiter(c.cfg.redcap),
        }
      : { off: "REDCap not configured" },
  analysis: (c) => ({
    handler: analysisProcessor({
      cfg: c.cfg,
      paths: c.paths,
      log: c.log,
      queue: c.analysisQueue,
      ...(c.pool ? { pool: c.pool } : {}),
    }) as Processor,
    concurrency: c.cfg.analysis.concurrency,
  }),
  export: (c) => ({
    handler: exportProcessor({
      cfg: c.cfg,
      paths: c.paths,
      log: c.log,
      ...(c.pool ? { pool: c.pool } : {}),
    }) as Processor,
    concurrency: 2,
  }),
  sftp: (c) => ({ handler: sftpProcessor({ cfg: c.cfg, log: c.log }) as Processor, concurrency: 2 }),
  inventory: (c) => ({
    handler: inventoryProcessor({
      cfg: c.cfg,
      paths: c.paths,
      transfers: c.transfers,
      log: c.log,
      redis: c.connection,
      ...(c.redcapQueues ? { redcapQueues: [c.redcapQueues.push, c.redcapQueues.sync] } : {}),
    }) as Processor,
    concurrency: 1,
  }),
  "scanner-pull": (c) => ({
    handler: scannerPullProcessor({
      cfg: c.cfg,
      paths: c.paths,
      store: new MppsStore(c.connection, c.prefix, c.cfg.scanners.giveUpHours),
      log: c.log,
    }) as Processor,
    concurrency: 4,
  }),
  automation: (c) => ({
    handler: automationProcessor({ cfg: c.cfg, log: c.log }) as Processor,
    concurrency: 4,
  }),
  cleanup: (c) => ({
    handler: cleanupProcessor({
      cfg: c.cfg,
      paths: c.paths,
      redis: c.connection,
      studies: new StudyRegistry(c.connection, c.prefix, { retentionDays: c.cfg.quarantine.retentionDays }),
      coupling: new CouplingRegistry(c.connection, c.prefix, { expiryDays: c.cfg.coupling.expiryDays }),
      transfers: c.transfers,
      log: c.log,
      pipelineQueues: c.protectingQueues,
      usage: diskUsedPercent,
      onDiskAbove: async (percent, threshold, dir) =>
        void (await emitAutomation(c.cfg, c.automationQueue, {
          type: "disk-above",
          percent,
          threshold,
          path: dir,
        })),
    }) as Processor,
    concurrency: 1,
  }),
  wsi: (c) => ({
    handler: c.withConfig(wsiProcessor({ ...transferDeps(c), store: uploadStore(c.cfg) }) as Processor),
    concurrency: 1,
  }),
  reclassify: (c) => ({
    handler: reclassifyProcessor({
      paths: c.paths,
      redis: c.connection,
      prefix: c.prefix,
      rules: () => c.rules.current(),
      arrivalQueue: c.arrivalQueue,
      log: c.log,
    }),
    concurrency: 2,
  }),
  heartbeat: () => ({ off: "worked by the receiver process itself (src/schedules/heartbeat.ts)" }),
};

/** What routing, transfers and WSI conversion need to start a transfer. */
function transferDeps(c: StageContext) {
  return {
    cfg: c.cfg,
    paths: c.paths,
    flow: c.flow,
    transfers: c.transfers,
    log: c.log,
    ...(c.redcapQueues ? { redcapPush: c.redcapQueues.push } : {}),
    analysisQueue: c.analysisQueue,
    automationQueue: c.automationQueue,
  };
}

function redcapStage(c: StageContext, queues: NonNullable<StageContext["redcapQueues"]>) {
  // The same object (not a copy): cfg.projects / cfg.routing.rules are refreshed from REDCap in place.
  const cfg = c.cfg as FionaConfig & { redcap: NonNullable<FionaConfig["redcap"]> };
  return { cfg, redis: c.connection, log: c.log, redcapQueues: [queues.push, queues.sync] };
}

/** Job-level limit per REDCap queue; every call also passes the shared per-call limit (src/redcap/rate.ts). */
function redcapLimiter(redcap: NonNullable<FionaConfig["redcap"]>) {
  return { max: redcap.rateLimitPerMinute, duration: 60_000 };
}
