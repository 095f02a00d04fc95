import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import type { Logger } from "../log.js";
import { startThread } from "../util/thread.js";
import { mergeDeidResults, type DeidFilesResult, type DeidFilesTask } from "./deid-files.js";

const CHUNK = 32;

interface Pending {
  resolve: (r: DeidFilesResult) => void;
  reject: (e: Error) => void;
}

/**
 * De-identification off the main event loop: a fixed set of worker threads, each taking chunks of
 * files, so a large series neither stalls job locks nor uses one core only.
 */
export class DeidPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly backlog: Array<{ task: DeidFilesTask; p: Pending }> = [];
  private readonly inflight = new Map<Worker, { id: number; p: Pending }>();
  private nextId = 0;

  constructor(
    private readonly log: Logger,
    private readonly threads = availableParallelism(),
  ) {}

  private spawn(): void {
    const w = startThread(import.meta.url, "deid-worker");
    w.on("message", (msg: { id: number; result?: DeidFilesResult; error?: string; code?: string }) => {
      const job = this.inflight.get(w);
      this.inflight.delete(w);
      if (job) {
        if (msg.error !== undefined) job.p.reject(Object.assign(new Error(msg.error), { code: msg.code }));
        else job.p.resolve(msg.result!);
      }
      this.release(w);
    });
    w.on("error", (e) => {
      this.log.error({ err: e.message }, "de-identification worker crashed; replacing it");
      this.inflight.get(w)?.p.reject(e);
      this.inflight.delete(w);
      this.workers.splice(this.workers.indexOf(w), 1);
      this.spawn();
    });
    this.workers.push(w);
    this.release(w);
  }

  private release(w: Worker): void {
    const next = this.backlog.shift();
    if (!next) return void this.idle.push(w);
    const id = this.nextId++;
    this.inflight.set(w, { id, p: next.p });
    w.postMessage({ id, task: next.task });
  }

  private runChunk(task: DeidFilesTask): Promise<DeidFilesResult> {
    // Threads start with the first transfer: a receiving-only site never pays their memory.
    while (this.workers.length < this.threads) this.spawn();
    return new Promise((resolve, reject) => {
      this.backlog.push({ task, p: { resolve, reject } });
      const w = this.idle.pop();
      if (w) this.release(w);
    });
  }

  /** De-identify every file of task, in chunks spread over the threads. */
  async run(task: DeidFilesTask): Promise<DeidFilesResult> {
    const chunks: DeidFilesTask[] = [];
    for (let i = 0; i < task.files.length; i += CHUNK)
      chunks.push({ ...task, files: task.files.slice(i, i + CHUNK) });
    return mergeDeidResults(await Promise.all(chunks.map((c) => this.runChunk(c))));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
