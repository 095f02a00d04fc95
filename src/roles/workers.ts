import { FlowProducer, Worker, type Processor } from "bullmq";
import { fileURLToPath } from "node:url";
import { watchRules, type CompiledRules } from "../classify/index.js";
import type { FionaConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import { SitePaths } from "../paths.js";
import { SeriesWriter } from "../ingest/series-writer.js";
import { arrivalProcessor } from "../processors/arrival.js";
import { deidentifyProcessor } from "../processors/deidentify.js";
import { ingestProcessor, studyActivity } from "../processors/ingest.js";
import { sendProcessor } from "../processors/send.js";
import { studyArrivedProcessor } from "../processors/study-arrived.js";
import { transferProcessor } from "../processors/transfer.js";
import { createRedis } from "../queues/connection.js";
import { ALL_QUEUES, QUEUES, createQueue, type QueueName } from "../queues/index.js";
import { StudyRegistry } from "../registry/studies.js";
import { TransferRegistry } from "../registry/transfers.js";
import { DeidPool } from "../transfer/deid-pool.js";

export const DEFAULT_RULES_FILE = fileURLToPath(new URL("../../rules/classifyRules.json", import.meta.url));

export interface WorkerStatus {
  queue: QueueName;
  running: boolean;
  paused: boolean;
}

export interface WorkersHandle {
  queues: QueueName[];
  status(): WorkerStatus[];
  /** Pause or resume taking ingest jobs (active ones finish); see yieldToReceiver in run.ts. */
  setIngestPaused(paused: boolean): void;
  close(): Promise<void>;
}

/** Queues that have a processor in this release. */
export const PROCESSED_QUEUES: QueueName[] = [
  QUEUES.ingest,
  QUEUES.arrival,
  QUEUES.studyArrived,
  QUEUES.transfer,
  QUEUES.deidentify,
  QUEUES.send,
];

export async function startWorkers(
  cfg: FionaConfig,
  log: Logger,
  only: QueueName[] = PROCESSED_QUEUES,
): Promise<WorkersHandle> {
  const unknown = only.filter((q) => !ALL_QUEUES.includes(q));
  if (unknown.length) throw new Error(`unknown queue(s): ${unknown.join(", ")}`);
  const connection = createRedis(cfg.redis.url, "worker");
  connection.on("error", (e) => log.warn({ err: e.message }, "redis connection error"));
  const prefix = cfg.redis.prefix;
  const paths = new SitePaths(cfg.dataDir);
  const registry = new StudyRegistry(connection, prefix);
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
  const flow = new FlowProducer({ connection, prefix });
  const pool = only.includes(QUEUES.deidentify) ? new DeidPool(log, cfg.transfer.deidThreads) : undefined;
  const transferDeps = { cfg, paths, flow, transfers, log };

  const processors: Partial<Record<QueueName, { fn: Processor; concurrency: number }>> = {
    ingest: {
      fn: ingestProcessor({
        paths,
        seriesWriter,
        studyActivity: studyActivity(registry, arrivalQueue, quietMs),
        log,
      }),
      concurrency: cfg.ingest.concurrency,
    },
    arrival: {
      fn: arrivalProcessor({ paths, registry, arrivalQueue, studyArrivedQueue, quietMs, log }),
      concurrency: 4,
    },
    "study-arrived": { fn: studyArrivedProcessor(transferDeps), concurrency: 4 },
    transfer: { fn: transferProcessor({ transfers, log }), concurrency: 4 },
    ...(pool ? { deidentify: { fn: deidentifyProcessor({ cfg, paths, pool }), concurrency: 2 } } : {}),
    send: { fn: sendProcessor({ cfg, redis: connection, prefix, transfers, log }), concurrency: 4 },
  };

  const workers: Array<{ queue: QueueName; worker: Worker }> = [];
  for (const queue of only) {
    const p = processors[queue];
    if (!p) {
      log.warn({ queue }, "no processor for this queue in this release; not starting a worker");
      continue;
    }
    const worker = new Worker(queue, p.fn, { connection, prefix, concurrency: p.concurrency });
    worker.on("failed", (job, err) =>
      log.warn({ queue, jobId: job?.id, attempt: job?.attemptsMade, err: err.message }, "job failed"),
    );
    worker.on("error", (err) => log.error({ queue, err: err.message }, "worker error"));
    workers.push({ queue, worker });
  }
  log.info({ queues: workers.map((w) => w.queue), prefix }, "workers started");

  return {
    queues: workers.map((w) => w.queue),
    status: () =>
      workers.map(({ queue, worker }) => ({ queue, running: worker.isRunning(), paused: worker.isPaused() })),
    setIngestPaused(paused) {
      const ingest = workers.find((w) => w.queue === QUEUES.ingest)?.worker;
      if (!ingest) return;
      if (paused) void ingest.pause(true);
      else ingest.resume();
    },
    async close() {
      // Worker.close() waits for active jobs to finish; their results are committed, not lost.
      await Promise.all(workers.map((w) => w.worker.close()));
      await Promise.all([arrivalQueue.close(), studyArrivedQueue.close(), flow.close(), pool?.close()]);
      rules.close();
      await connection.quit().catch(() => connection.disconnect());
    },
  };
}
