import { rm } from "node:fs/promises";
import type { FionaConfig } from "../config/schema.js";
import type { TransferJob } from "../queues/index.js";
import type { RunResult } from "../registry/transfers.js";
import type { UploadStore } from "./uploads.js";

/** The transfer stage's afterRun hook: settle the slide upload of a finished run. */
export function settleUpload(cfg: FionaConfig, store: UploadStore) {
  return async (data: TransferJob, result: RunResult): Promise<void> => {
    if (!data.uploadId) return;
    const record = await store.get(data.uploadId);
    if (!record) return;
    if (result.status === "done") {
      record.state = "sent";
      delete record.error;
      if (cfg.wsi.deleteUploadAfterSend) await rm(store.slidePath(record), { force: true });
    } else {
      record.state = "failed";
      record.error = result.error ?? `transfer ${result.status}`;
    }
    await store.save(record);
  };
}
