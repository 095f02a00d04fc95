import { UnrecoverableError } from "bullmq";
import type { FionaConfig } from "../config/schema.js";
import { ExportStore } from "../export/store.js";
import type { Logger } from "../log.js";
import type { SftpJob } from "../queues/index.js";
import { HostKeyMismatchError, uploadFile, type UploadResult } from "../sftp/upload.js";
import type { Stage } from "./stage.js";

export interface SftpDeps {
  cfg: FionaConfig;
  log: Logger;
}

/** Upload a finished export (or a file of the exports folder) to a configured SFTP destination. */
export const sftpProcessor: Stage<SftpDeps, SftpJob, UploadResult> = (deps) => {
  const store = new ExportStore(deps.cfg);
  return async (job) => {
    const dest = deps.cfg.exports.sftp[job.data.destination];
    if (!dest) throw new UnrecoverableError(`no SFTP destination ${job.data.destination} (exports.sftp)`);
    const rec = await store.get(job.data.exportId);
    if (!rec || rec.status !== "done")
      throw new UnrecoverableError(`export ${job.data.exportId} is not finished`);
    let last = -1;
    try {
      const r = await uploadFile(dest, store.zipPath(rec.id), {
        remoteName: rec.downloadName,
        ...(rec.sha256 ? { sha256: rec.sha256 } : {}),
        onProgress: (sent, total) => {
          const pct = total ? Math.floor((100 * sent) / total) : 100;
          if (pct !== last) {
            last = pct;
            void job.updateProgress(pct).catch(() => {});
          }
        },
        onRetry: (attempt, err) => void job.log(`attempt ${attempt} failed (${err.message}); restarting`),
      });
      deps.log.info({ exportId: rec.id, destination: job.data.destination, size: r.size }, "export uploaded");
      return r;
    } catch (e) {
      if (e instanceof HostKeyMismatchError) throw new UnrecoverableError(e.message);
      throw e;
    }
  };
};
