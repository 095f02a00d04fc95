/**
 * Worker-thread entry for `fiona start`: the pipeline workers get their own event loop (and core),
 * so ingest and de-identification never delay the receiver's C-STORE responses.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { FionaConfig } from "../config/schema.js";
import { createLogger } from "../log.js";
import type { QueueName } from "../queues/index.js";
import { logRedisErrorsTo } from "../queues/redis-errors.js";
import { routeConsoleToLog } from "./process-logging.js";
import { startWorkers } from "./workers.js";

const { cfg, queues } = workerData as { cfg: FionaConfig; queues: QueueName[] };
const log = createLogger(cfg.log.level);
// This thread has its own console and module state: keep its output JSON too (src/roles/process-logging.ts).
logRedisErrorsTo(log);
routeConsoleToLog(log);

try {
  const workers = await startWorkers(cfg, log, queues);
  parentPort!.on("message", (msg: { type: "status" | "close" | "yield" | "full"; id: number }) => {
    if (msg.type === "yield" || msg.type === "full") workers.setIngestYielding(msg.type === "yield");
    else if (msg.type === "status") parentPort!.postMessage({ id: msg.id, status: workers.status() });
    else void workers.close().then(() => parentPort!.postMessage({ id: msg.id, closed: true }));
  });
  parentPort!.postMessage({ ready: true, queues: workers.queues });
} catch (e) {
  parentPort!.postMessage({ error: e instanceof Error ? e.message : String(e) });
}
