/** Worker-thread entry: de-identify one chunk of files per message (see DeidPool). */
import { parentPort } from "node:worker_threads";
import { deidentifyFiles, type DeidFilesTask } from "./deid-files.js";

parentPort?.on("message", (msg: { id: number; task: DeidFilesTask }) => {
  try {
    parentPort!.postMessage({ id: msg.id, result: deidentifyFiles(msg.task) });
  } catch (e) {
    // The errno code crosses the thread boundary too: a full disk must stay recognisable (ENOSPC).
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    parentPort!.postMessage({
      id: msg.id,
      error: e instanceof Error ? e.message : String(e),
      ...(typeof code === "string" ? { code } : {}),
    });
  }
});
