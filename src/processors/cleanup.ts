import { UnrecoverableError } from "bullmq";
import { runArchiveCleanup, type ArchiveCleanupDeps } from "../cleanup/archive.js";
import { sweepOrphans } from "../cleanup/orphans.js";
import { runReconcile } from "../cleanup/reconcile.js";
import { clearStaleLinks } from "../cleanup/stale-links.js";
import type { QuarantineStore } from "../quarantine/store.js";
import type { CleanupJob } from "../queues/index.js";
import type { CouplingRegistry } from "../registry/coupling.js";
import { pruneRouting } from "../routing/deps.js";
import type { Stage } from "./stage.js";

export interface CleanupDeps extends ArchiveCleanupDeps {
  coupling: CouplingRegistry;
  quarantine: QuarantineStore;
}

/**
 * Housekeeping jobs of the `cleanup` queue; job.data.dryRun (or archiveCleanup.dryRun) deletes nothing
 * (the reconciler deletes nothing anyway). Reconcile and orphans log their own event.
 */
export const cleanupProcessor: Stage<CleanupDeps, CleanupJob, unknown> = (deps) => async (job) => {
  const dryRun = job.data.dryRun ?? deps.cfg.schedules.archiveCleanup.dryRun;
  switch (job.data.kind) {
    case "archive":
      return runArchiveCleanup(deps, dryRun);
    case "stale-links": {
      const r = await clearStaleLinks(deps.paths, dryRun);
      deps.log.info({ jobId: job.id, event: "stale-links", dryRun, ...r }, "stale links cleared");
      return r;
    }
    case "reconcile":
      return runReconcile(deps);
    case "orphans":
      return sweepOrphans(deps, { dryRun });
    case "incoming-retention": {
      const r = await pruneRouting(deps);
      deps.log.info({ jobId: job.id, event: "incoming-retention", ...r }, "expired list entries removed");
      return r;
    }
    default:
      throw new UnrecoverableError(`unknown cleanup kind ${String((job.data as { kind?: unknown }).kind)}`);
  }
};
