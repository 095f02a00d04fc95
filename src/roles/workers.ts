import { FlowProducer, Worker, type Processor, type Queue } from "bullmq";
import { fileURLToPath } from "node:url";
import { watchRules, type CompiledRules } from "../classify/index.js";
import { startupHousekeeping } from "../cleanup/at-start.js";
import type { FionaConfig } from "../config/schema.js";
import { withLogContext, type Logger } from "../log.js";
import { JobMetrics } from "../metrics/jobs.js";
import { SitePaths, redactIdentifyingPaths } from "../paths.js";
import { SeriesWriter } from "../ingest/series-writer.js";
import { STAGES, WORKER_QUEUES, concurrencyOf, type StageContext } from "../processors/index.js";
import { upsertSchedules } from "../schedules/index.js";
import { createRedis } from "../queues/connection.js";
import { reportRedisErrors } from "../queues/redis-errors.js";
import { ALL_QUEUES, QUEUES, createQueue, type QueueName } from "../queues/index.js";
import { ConfigRefresher } from "../redcap/config-merge.js";
import { CouplingRegistry } from "../registry/coupling.js";
import { identifierKey } from "../registry/identifier-key.js";
import { reindexIdentifiers } from "../registry/identifier-reindex.js";
import { StudyRegistry } from "../registry/studies.js";
import { TransferRegistry } from "../registry/transfers.js";
import { idsOf, jobRecordId } from "../quarantine/record.js";
import { QuarantineStore } from "../quarantine/store.js";
import { DeidPool } from "../transfer/deid-pool.js";
import { retryWhenDiskFull } from "./disk-full-retry.js";

export const DEFAULT_RULES_FILE = fileURLToPath(new URL("../../rules/classifyRules.json", import.meta.url));

export interface WorkerStatus {
  queue: QueueName;
  running: boolean;
  paused: boolean;
}

export interface WorkersHandle {
  queues: QueueName[];
  status(): WorkerStatus[];
  /** Run ingest at ingest.concurrencyWhileReceiving (true) or at full concurrency; see run.ts. */
  setIngestYielding(yielding: boolean): void;
  close(): Promise<void>;
}

export async function startWorkers(
  cfg: FionaConfig,
  log: Logger,
  only: QueueName[] = WORKER_QUEUES,
): Promise<WorkersHandle> {
  const unknown = only.filter((q) => !ALL_QUEUES.includes(q));
  if (unknown.length) throw new Error(`unknown queue(s): ${unknown.join(", ")}`);
  const redcapCfg = cfg.redcap;
  const connection = createRedis(cfg.redis, "worker");
  const prefix = cfg.redis.prefix;
  const paths = new SitePaths(cfg.dataDir);
  // Made on first use when there is no secret: on a full disk that is a disk-full retry, not a failed start.
  const keyOf = () => identifierKey(cfg);
  const registry = new StudyRegistry(connection, prefix, {
    retentionDays: cfg.incoming.retentionDays,
    identifierKey: keyOf,
  });
  const rulesFile = cfg.classify.rulesFile ?? DEFAULT_RULES_FILE;
  const rules = await watchRules(
    rulesFile,
    () => log.info({ rulesFile }, "classification rules reloaded"),
    (err: Error) =>
      log.error(
        { rulesFile, err: err.message },
        "classification rules not reloaded, keeping the previous ones",
      ),
  );
  const arrivalQueue = createQueue(QUEUES.arrival, connection, prefix);
  const studyArrivedQueue = createQueue(QUEUES.studyArrived, connection, prefix);
  const quietMs = cfg.arrival.quietSeconds * 1000;
  const seriesWriter = new SeriesWriter(paths, connection, prefix, (): CompiledRules => rules.current());

  const transfers = new TransferRegistry(connection, prefix);
  const quarantine = new QuarantineStore(connection, prefix, log);
  const flow = new FlowProducer({ connection, prefix });
  reportRedisErrors(flow, "flow-producer");
  const pool = only.includes(QUEUES.deidentify) ? new DeidPool(log, cfg.transfer.deidThreads) : undefined;
  const redcapQueues = redcapCfg
    ? {
        push: createQueue(QUEUES.redcapPush, connection, prefix),
        sync: createQueue(QUEUES.redcapSync, connection, prefix),
      }
    : undefined;
  const analysisQueue = createQueue(QUEUES.analysis, connection, prefix);
  const automationQueue = createQueue(QUEUES.automation, connection, prefix);
  // Pending jobs on these keep the archive cleanup away from their study.
  const protectingQueues: Queue[] = (
    [
      "ingest",
      "arrival",
      "study-arrived",
      "transfer",
      "deidentify",
      "send",
      "analysis",
      "reclassify",
    ] as const
  ).map((q) => createQueue(q, connection, prefix) as Queue);
  // With REDCap, cfg.projects / cfg.routing.rules are the file's merged with the tables pulled from
  // REDCap (src/redcap/config-merge.ts): refreshed on a timer and at the start of arrival and de-identification jobs.
  const refresher = redcapCfg ? new ConfigRefresher(cfg, connection, log) : undefined;
  const refreshConfig = async () =>
    await refresher
      ?.refresh()
      .catch((e: unknown) =>
        log.warn(
          { err: (e as Error).message },
          "REDCap tables not re-read; keeping the current configuration",
        ),
      );
  await refreshConfig();
  const refreshTimer = refresher ? setInterval(() => void refreshConfig(), 5000) : undefined;
  refreshTimer?.unref();
  const withConfig =
    (fn: Processor): Processor =>
    async (job, token) => {
      await refreshConfig();
      return fn(job, token) as unknown;
    };

  const context: StageContext = {
    cfg,
    log,
    paths,
    connection,
    prefix,
    registry,
    rules,
    seriesWriter,
    quietMs,
    arrivalQueue,
    studyArrivedQueue,
    analysisQueue,
    automationQueue,
    transfers,
    quarantine,
    flow,
    ...(pool ? { pool } : {}),
    ...(redcapQueues ? { redcapQueues } : {}),
    protectingQueues,
    refreshConfig,
    withConfig,
  };
  // The schedulers of the queues this process works on (REDCap pulls, export and disk cleanup, …).
  await upsertSchedules(cfg, connection, { queues: only, log });
  // Before any stage looks an accession number up: the indexes are under the current key.
  await reindexIdentifiers({
    redis: connection,
    prefix,
    paths,
    identifierKey: keyOf,
    studies: registry,
    coupling: new CouplingRegistry(connection, prefix, {
      expiryDays: cfg.coupling.expiryDays,
      identifierKey: keyOf,
    }),
    log,
  }).catch((e: Error) =>
    log.warn(
      { event: "identifier-reindex-failed", err: e.message },
      "accession number indexes not checked; the next worker start tries again",
    ),
  );

  const jobMetrics = new JobMetrics(connection, prefix);
  const workers: Array<{ queue: QueueName; worker: Worker }> = [];
  for (const queue of only) {
    const binding = STAGES[queue].bind(context);
    if ("off" in binding) {
      // REDCap not configured is a choice; any other reason here is worth a look.
      const level = binding.off === "REDCap not configured" ? "info" : "warn";
      log[level]({ queue, reason: binding.off }, `queue ${queue} off: ${binding.off}`);
      continue;
    }
    // A full disk delays a job of any stage instead of failing it (src/roles/disk-full-retry.ts).
    const handler = retryWhenDiskFull(binding.handler, queue, log, cfg.disk);
    // Every log line a job writes carries its queue and job id (src/log.ts withLogContext).
    const fn: Processor = (job, token) =>
      withLogContext({ queue, jobId: job.id ?? "" }, async () => {
        try {
          return (await handler(job, token)) as unknown;
        } catch (e) {
          // In place, so the error keeps its class (UnrecoverableError) and code for BullMQ and the retries.
          if (e instanceof Error) {
            e.message = redactIdentifyingPaths(e.message);
            if (e.stack) e.stack = redactIdentifyingPaths(e.stack);
          }
          throw e;
        }
      });
    const worker = new Worker(queue, fn, {
      connection,
      prefix,
      concurrency: concurrencyOf(cfg, queue),
      ...(binding.limiter ? { limiter: binding.limiter } : {}),
      // Jobs of a crashed worker come back within seconds, not BullMQ's default minute.
      lockDuration: cfg.workers.lockSeconds * 1000,
      stalledInterval: cfg.workers.stalledCheckSeconds * 1000,
      maxStalledCount: cfg.workers.maxStalledCount,
    });
    worker.on("failed", (job, err) => {
      log.warn({ queue, jobId: job?.id, attempt: job?.attemptsMade, err: err.message }, "job failed");
      // finishedOn is set once BullMQ has given up on the job (no attempts left, or unrecoverable).
      if (job?.finishedOn)
        void quarantine
          .add({
            stage: queue,
            reason: err.message,
            ids: idsOf(job.data),
            job: { id: job.id ?? "", name: job.name, data: job.data },
          })
          .catch((e: Error) =>
            log.error({ queue, jobId: job.id, err: e.message }, "quarantine write failed"),
          );
    });
    // A job that failed before and now succeeded (a retry, e.g. from Bull Board) leaves no record behind.
    worker.on("completed", (job) => {
      if (job.attemptsMade > 1 && job.id)
        void quarantine
          .remove(jobRecordId(queue, job.id))
          .catch((e: Error) =>
            log.error({ queue, jobId: job.id, err: e.message }, "quarantine write failed"),
          );
    });
    reportRedisErrors(worker, `worker:${queue}`);
    jobMetrics.attach(worker, queue);
    workers.push({ queue, worker });
  }
  log.info({ queues: workers.map((w) => w.queue), prefix }, "workers started");
  // What crashed writers left, and archived files whose ingest job was lost (src/cleanup/at-start.ts).
  const housekeeping = startupHousekeeping(
    { cfg, paths, redis: connection, log, studies: registry, quarantine },
    { reconcile: workers.some((w) => w.queue === QUEUES.ingest) },
  );

  return {
    queues: workers.map((w) => w.queue),
    status: () =>
      workers.map(({ queue, worker }) => ({ queue, running: worker.isRunning(), paused: worker.isPaused() })),
    setIngestYielding(yielding) {
      const ingest = workers.find((w) => w.queue === QUEUES.ingest)?.worker;
      if (ingest)
        ingest.concurrency = yielding ? cfg.ingest.concurrencyWhileReceiving : cfg.ingest.concurrency;
    },
    async close() {
      if (refreshTimer) clearInterval(refreshTimer);
      await housekeeping.stop();
      // Worker.close() waits for active jobs to finish; their results are committed, not lost.
      await Promise.all(workers.map((w) => w.worker.close()));
      await jobMetrics.close();
      await Promise.all([
        arrivalQueue.close(),
        studyArrivedQueue.close(),
        flow.close(),
        pool?.close(),
        redcapQueues?.push.close(),
        redcapQueues?.sync.close(),
        analysisQueue.close(),
        ...protectingQueues.map((q) => q.close()),
        automationQueue.close(),
      ]);
      rules.close();
      await connection.quit().catch(() => connection.disconnect());
    },
  };
}
