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
import { recordTransferStages } from "../metrics/transfer-stages.js";
import type { SitePaths } from "../paths.js";
import type { QuarantineStore } from "../quarantine/store.js";
import { QUEUES, createQueue, type QueueName, type TypedQueue } from "../queues/index.js";
import type { TransferRegistry } from "../registry/transfers.js";
import type { DeidPool } from "../transfer/deid-pool.js";
import { emitAutomation } from "../automation/emit.js";
import { CouplingRegistry } from "../registry/coupling.js";
import { StudyRegistry } from "../registry/studies.js";
import { MppsStore } from "../scanner/mpps-store.js";
import { diskUsedPercent } from "../schedules/clear-exports.js";
import { settleUpload } from "../wsi/settle.js";
import { uploadStore } from "../wsi/uploads.js";
import { studyActivity } from "../ingest/study-activity.js";
import { analysisProcessor } from "./analysis.js";
import { arrivalProcessor } from "./arrival.js";
import { automationProcessor } from "./automation.js";
import { cleanupProcessor } from "./cleanup.js";
import { deidentifyProcessor } from "./deidentify.js";
import { exportProcessor } from "./export.js";
import { ingestProcessor } from "./ingest.js";
import { inventoryProcessor } from "./inventory.js";
import { reclassifyProcessor } from "./reclassify.js";
import { redcapPushProcessor } from "./redcap-push.js";
import { redcapSyncProcessor } from "./redcap-sync.js";
import { scannerPullProcessor } from "./scanner-pull.js";
import { sendProcessor } from "./send.js";
import { sftpProcessor } from "./sftp.js";
import { studyArrivedProcessor } from "./study-arrived.js";
import { transferProcessor } from "./transfer.js";
import { wsiProcessor } from "./wsi.js";

export type Role = "receiver" | "worker-ingest" | "worker-transfer" | "worker-jobs";

/** Where a stage's concurrency is configured: a key of the configuration, or fixed and why. */
export type Concurrency =
  | { key: "ingest.concurrency" | "analysis.concurrency" | `concurrency.${keyof FionaConfig["concurrency"]}` }
  | { fixed: number; why: string };

export interface StageSpec {
  /** The role whose process works this queue. */
  role: Role;
  concurrency: Concurrency;
  /** The handler, built once per process, or why this queue is off there. */
  bind: (c: StageContext) => Binding;
}

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
  /** Where what a stage refused or failed for good is kept (src/quarantine). */
  quarantine: QuarantineStore;
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

export type Binding = { handler: Processor; limiter?: { max: number; duration: number } } | { off: string };

const key = (k: Extract<Concurrency, { key: string }>["key"]): Concurrency => ({ key: k });

/** Every queue: its role, its concurrency and its handler; each handler is built only where it runs. */
export const STAGES: Record<QueueName, StageSpec> = {
  ingest: {
    role: "worker-ingest",
    concurrency: key("ingest.concurrency"),
    bind: (c) => ({
      handler: ingestProcessor({
        paths: c.paths,
        seriesWriter: c.seriesWriter,
        studyActivity: studyActivity({
          registry: c.registry,
          redis: c.connection,
          prefix: c.prefix,
          arrivalQueue: c.arrivalQueue,
          quietMs: c.quietMs,
          pollMs: c.cfg.arrival.pollSeconds * 1000,
        }),
        log: c.log,
      }),
    }),
  },
  arrival: {
    role: "worker-ingest",
    concurrency: key("concurrency.arrival"),
    bind: (c) => ({
      handler: arrivalProcessor({
        paths: c.paths,
        redis: c.connection,
        prefix: c.prefix,
        registry: c.registry,
        ingestQueue: createQueue(QUEUES.ingest, c.connection, c.prefix),
        arrivalQueue: c.arrivalQueue,
        studyArrivedQueue: c.studyArrivedQueue,
        quietMs: c.quietMs,
        pollMs: c.cfg.arrival.pollSeconds * 1000,
        log: c.log,
      }),
    }),
  },
  "study-arrived": {
    role: "worker-ingest",
    concurrency: key("concurrency.study-arrived"),
    bind: (c) => ({ handler: c.withConfig(studyArrivedProcessor(transferDeps(c))) }),
  },
  reclassify: {
    role: "worker-ingest",
    concurrency: key("concurrency.reclassify"),
    bind: (c) => ({
      handler: reclassifyProcessor({
        paths: c.paths,
        redis: c.connection,
        prefix: c.prefix,
        rules: () => c.rules.current(),
        arrivalQueue: c.arrivalQueue,
        log: c.log,
      }),
    }),
  },
  transfer: {
    role: "worker-transfer",
    concurrency: key("concurrency.transfer"),
    bind: (c) => ({
      handler: transferProcessor({
        transfers: c.transfers,
        log: c.log,
        automation: { cfg: c.cfg, queue: c.automationQueue },
        quarantine: c.quarantine,
        ...(c.redcapQueues ? { redcapPush: c.redcapQueues.push } : {}),
        afterRun: settleUpload(c.cfg, uploadStore(c.cfg)),
        flow: c.flow,
        onStageTimings: (t) => recordTransferStages(c.connection, c.prefix, t),
      }),
    }),
  },
  deidentify: {
    role: "worker-transfer",
    concurrency: key("concurrency.deidentify"),
    bind: (c) =>
      c.pool
        ? { handler: c.withConfig(deidentifyProcessor({ cfg: c.cfg, paths: c.paths, pool: c.pool })) }
        : { off: "no de-identification threads in this process" },
  },
  send: {
    role: "worker-transfer",
    concurrency: key("concurrency.send"),
    bind: (c) => ({
      handler: sendProcessor({
        cfg: c.cfg,
        redis: c.connection,
        prefix: c.prefix,
        transfers: c.transfers,
        log: c.log,
      }),
    }),
  },
  "redcap-push": {
    role: "worker-jobs",
    concurrency: key("concurrency.redcap-push"),
    bind: (c) =>
      c.redcapQueues && c.cfg.redcap
        ? {
            handler: redcapPushProcessor({
              ...redcapStage(c, c.redcapQueues),
              paths: c.paths,
              transfers: c.transfers,
              studies: c.registry,
            }),
            limiter: redcapLimiter(c.cfg.redcap),
          }
        : { off: "REDCap not configured" },
  },
  "redcap-sync": {
    role: "worker-jobs",
    concurrency: { fixed: 1, why: "pulls of one REDCap table must not overlap" },
    bind: (c) =>
      c.redcapQueues && c.cfg.redcap
        ? {
            handler: redcapSyncProcessor({
              ...redcapStage(c, c.redcapQueues),
              paths: c.paths,
              flow: c.flow,
              transfers: c.transfers,
              redcapPush: c.redcapQueues.push,
              refreshConfig: c.refreshConfig,
            }),
            limiter: redcapLimiter(c.cfg.redcap),
          }
        : { off: "REDCap not configured" },
  },
  analysis: {
    role: "worker-jobs",
    concurrency: key("analysis.concurrency"),
    bind: (c) => ({
      handler: analysisProcessor({
        cfg: c.cfg,
        paths: c.paths,
        log: c.log,
        queue: c.analysisQueue,
        ...(c.pool ? { pool: c.pool } : {}),
      }),
    }),
  },
  export: {
    role: "worker-jobs",
    concurrency: key("concurrency.export"),
    bind: (c) => ({
      handler: exportProcessor({
        cfg: c.cfg,
        paths: c.paths,
        log: c.log,
        ...(c.pool ? { pool: c.pool } : {}),
      }),
    }),
  },
  sftp: {
    role: "worker-jobs",
    concurrency: key("concurrency.sftp"),
    bind: (c) => ({ handler: sftpProcessor({ cfg: c.cfg, log: c.log }) }),
  },
  inventory: {
    role: "worker-jobs",
    concurrency: { fixed: 1, why: "one crawl of the research PACS at a time" },
    bind: (c) => ({
      handler: inventoryProcessor({
        cfg: c.cfg,
        paths: c.paths,
        transfers: c.transfers,
        log: c.log,
        redis: c.connection,
        ...(c.redcapQueues ? { redcapQueues: [c.redcapQueues.push, c.redcapQueues.sync] } : {}),
      }),
    }),
  },
  "scanner-pull": {
    role: "worker-jobs",
    concurrency: key("concurrency.scanner-pull"),
    bind: (c) => ({
      handler: scannerPullProcessor({
        cfg: c.cfg,
        paths: c.paths,
        store: new MppsStore(c.connection, c.prefix, c.cfg.scanners.giveUpHours),
        log: c.log,
      }),
    }),
  },
  automation: {
    role: "worker-jobs",
    concurrency: key("concurrency.automation"),
    bind: (c) => ({ handler: automationProcessor({ cfg: c.cfg, log: c.log }) }),
  },
  cleanup: {
    role: "worker-jobs",
    concurrency: { fixed: 1, why: "one housekeeping pass over the data tree at a time" },
    bind: (c) => ({
      handler: cleanupProcessor({
        cfg: c.cfg,
        paths: c.paths,
        redis: c.connection,
        studies: new StudyRegistry(c.connection, c.prefix, { retentionDays: c.cfg.incoming.retentionDays }),
        coupling: new CouplingRegistry(c.connection, c.prefix, { expiryDays: c.cfg.coupling.expiryDays }),
        transfers: c.transfers,
        quarantine: c.quarantine,
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
      }),
    }),
  },
  wsi: {
    role: "worker-jobs",
    concurrency: key("concurrency.wsi"),
    bind: (c) => ({ handler: c.withConfig(wsiProcessor({ ...transferDeps(c), store: uploadStore(c.cfg) })) }),
  },
  heartbeat: {
    role: "receiver",
    concurrency: { fixed: 1, why: "one C-ECHO of this receiver at a time" },
    bind: () => ({ off: "worked by the receiver process itself (src/schedules/heartbeat.ts)" }),
  },
};

/** The role whose process works each queue. */
export const ROLE_OF = Object.fromEntries(
  Object.entries(STAGES).map(([queue, spec]) => [queue, spec.role]),
) as Record<QueueName, Role>;

/** The queues worker processes work (every queue but the receiver's own). */
export const WORKER_QUEUES: QueueName[] = (Object.keys(STAGES) as QueueName[]).filter(
  (q) => STAGES[q].role !== "receiver",
);

/** How many jobs of this queue one process runs at once. */
export function concurrencyOf(cfg: FionaConfig, queue: QueueName): number {
  const c = STAGES[queue].concurrency;
  if ("fixed" in c) return c.fixed;
  if (c.key === "ingest.concurrency") return cfg.ingest.concurrency;
  if (c.key === "analysis.concurrency") return cfg.analysis.concurrency;
  return cfg.concurrency[c.key.slice("concurrency.".length) as keyof FionaConfig["concurrency"]];
}

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
