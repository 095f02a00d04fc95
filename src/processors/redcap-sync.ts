import type { Queue } from "bullmq";
import type { Logger } from "../log.js";
import type { RedcapPushJob, RedcapSyncJob } from "../queues/index.js";
import { runRedcapJob, stageClient, type RedcapStageDeps } from "../redcap/stage.js";
import { pullTransferRequests } from "../redcap/sync.js";
import { syncTables } from "../redcap/tables.js";
import type { TransferDeps } from "../transfer/start.js";
import type { Stage } from "./stage.js";

export interface RedcapSyncDeps extends RedcapStageDeps, Omit<TransferDeps, "cfg"> {
  log: Logger;
  redcapPush: Queue<RedcapPushJob>;
  /** Re-merge cfg.projects / cfg.routing.rules from the tables in Redis (ConfigRefresher.refresh). */
  refreshConfig?: () => Promise<unknown>;
}

/**
 * Read from REDCap: start the transfer requests created in Incoming (pull-transfers), or pull the
 * DataTransferProjects, Routing and CouplingList tables and write new auto-IDs (pull-tables).
 */
export const redcapSyncProcessor: Stage<RedcapSyncDeps, RedcapSyncJob, unknown> = (deps) => {
  const client = stageClient(deps);
  return (job, token) =>
    runRedcapJob(deps, job, token, async () => {
      if (job.data.kind === "pull-tables")
        return syncTables(client, deps, deps.refreshConfig ?? (() => Promise.resolve()));
      await deps.refreshConfig?.();
      const pulled = await pullTransferRequests(client(job.data.redcapProject), deps, async (requestId) => {
        const t = await deps.transfers.get(requestId);
        if (!t) return;
        await deps.redcapPush.add(
          "transfer-result",
          {
            redcapProject: job.data.redcapProject,
            kind: "transfer-result",
            studyInstanceUid: t.studyInstanceUid,
            requestId,
            run: t.runs,
          },
          { jobId: `result-${requestId}-${t.runs}-again` },
        );
      });
      const count = (st: string) => pulled.filter((p) => p.status === st).length;
      return {
        requests: pulled.length,
        started: count("started"),
        invalid: count("invalid"),
        running: count("running"),
      };
    });
};
