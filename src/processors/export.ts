import { UnrecoverableError } from "bullmq";
import type { FionaConfig } from "../config/schema.js";
import { buildExport, ExportError } from "../export/build.js";
import { ExportStore, type ExportRecord } from "../export/store.js";
import type { Logger } from "../log.js";
import type { SitePaths } from "../paths.js";
import type { ExportJob } from "../queues/index.js";
import { clearExports, type ClearResult } from "../schedules/clear-exports.js";
import type { DeidPool } from "../transfer/deid-pool.js";
import type { Stage } from "./stage.js";

export interface ExportDeps {
  cfg: FionaConfig;
  paths: SitePaths;
  log: Logger;
  pool?: DeidPool;
}

/** Build one export archive (the record was created by whoever queued the job). */
export const exportProcessor: Stage<
  ExportDeps,
  ExportJob,
  Pick<ExportRecord, "id" | "size" | "file"> | ClearResult
> = (deps) => {
  const store = new ExportStore(deps.cfg);
  return async (job) => {
    const data = job.data;
    if (data.kind === "clear-exports") return clearExports(deps.cfg, deps.log);
    try {
      const pool = deps.pool;
      const rec = await buildExport(
        {
          cfg: deps.cfg,
          paths: deps.paths,
          store,
          ...(pool ? { deid: (t) => pool.run(t) } : {}),
          onProgress: (p) => job.updateProgress(p),
        },
        data.exportId,
      );
      await job.updateProgress(100);
      deps.log.info({ exportId: rec.id, size: rec.size, layout: rec.layout }, "export built");
      return { id: rec.id, file: rec.file, ...(rec.size !== undefined ? { size: rec.size } : {}) };
    } catch (e) {
      if (e instanceof ExportError) throw new UnrecoverableError(e.message);
      throw e;
    }
  };
};
