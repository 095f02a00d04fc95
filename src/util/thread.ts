/**
 * The one way FIONA starts a worker thread: on a module next to the caller's, the compiled `.js` when
 * the caller runs from dist/, the `.ts` source through tsx's loader when it runs from src/ (tests,
 * `tsx`), since worker threads do not inherit the loader. Tests thereby run the thread code they test,
 * never a stale build, and production never needs the sources.
 */
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker, type WorkerOptions } from "node:worker_threads";

/** `callerUrl`: the caller's import.meta.url; `entry`: the sibling module's name without extension. */
export function startThread(callerUrl: string, entry: string, options: WorkerOptions = {}): Worker {
  const self = fileURLToPath(callerUrl);
  const dir = path.dirname(self);
  if (!self.endsWith(".ts")) return new Worker(path.join(dir, `${entry}.js`), options);
  const source = pathToFileURL(path.join(dir, `${entry}.ts`)).href;
  const boot = `import("tsx/esm/api").then((m) => { m.register(); return import(${JSON.stringify(source)}); });`;
  return new Worker(boot, { ...options, eval: true });
}
