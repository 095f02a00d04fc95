import type { FionaConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import type { QueueName } from "../queues/index.js";
import { startThread } from "../util/thread.js";
import type { WorkerStatus, WorkersHandle } from "./workers.js";

/**
 * Run the workers in a worker thread of this process. The handle mirrors startWorkers', with
 * status() answered from the last poll.
 */
export async function startWorkersThread(
  cfg: FionaConfig,
  log: Logger,
  queues: QueueName[],
): Promise<WorkersHandle> {
  const thread = startThread(import.meta.url, "workers-thread", { workerData: { cfg, queues } });
  let nextId = 0;
  const waiting = new Map<number, (msg: Record<string, unknown>) => void>();
  let lastStatus: WorkerStatus[] = [];
  let exited = false;
  let closing = false;
  const started = await new Promise<QueueName[]>((resolve, reject) => {
    thread.once("error", reject);
    thread.once("exit", (code) => reject(new Error(`workers thread exited with code ${code}`)));
    thread.on("message", (msg: { id?: number; ready?: boolean; queues?: QueueName[]; error?: string }) => {
      if (msg.error) reject(new Error(msg.error));
      else if (msg.ready) resolve(msg.queues ?? []);
      else if (msg.id !== undefined) waiting.get(msg.id)?.(msg as Record<string, unknown>);
    });
  });
  thread.removeAllListeners("exit");
  thread.removeAllListeners("error");
  thread.on("error", (e) => log.error({ err: e.message }, "workers thread failed"));
  thread.on("exit", (code) => {
    exited = true;
    if (!closing) log.error({ code }, "workers thread exited");
  });
  const ask = (type: "status" | "close") =>
    new Promise<Record<string, unknown>>((resolve) => {
      const id = nextId++;
      waiting.set(id, (m) => {
        waiting.delete(id);
        resolve(m);
      });
      thread.postMessage({ type, id });
    });
  const poll = setInterval(() => {
    if (!exited) void ask("status").then((m) => (lastStatus = m.status as WorkerStatus[]));
  }, 1000);
  lastStatus = (await ask("status")).status as WorkerStatus[];
  return {
    queues: started,
    status: () => (exited ? lastStatus.map((s) => ({ ...s, running: false })) : lastStatus),
    setIngestYielding(yielding) {
      if (!exited) thread.postMessage({ type: yielding ? "yield" : "full", id: -1 });
    },
    async close() {
      clearInterval(poll);
      closing = true;
      if (!exited) await ask("close");
      await thread.terminate();
    },
  };
}
