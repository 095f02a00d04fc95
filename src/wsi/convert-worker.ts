/** Worker-thread entry of convertSlide: one conversion per thread, progress and the result as messages. */
import { parentPort, workerData } from "node:worker_threads";
import type { WorkerReply, WorkerTask } from "./convert.js";
import { convertInThisThread } from "./convert-core.js";

const task = workerData as WorkerTask;
const post = (msg: WorkerReply) => parentPort!.postMessage(msg);

convertInThisThread(task.input, task.outDir, task.dataset, {
  keepThumbnail: task.keepThumbnail,
  onProgress: (progress) => post({ type: "progress", progress }),
})
  .then((result) => post({ type: "done", result }))
  .catch((e: unknown) =>
    post(
      e instanceof Error
        ? { type: "error", name: e.name, message: e.message, code: (e as NodeJS.ErrnoException).code }
        : { type: "error", name: "Error", message: String(e) },
    ),
  );
