import type { Job } from "bullmq";
import type { Logger } from "../log.js";
import type { StudyArrivedJob } from "../queues/index.js";
import type { TransferRegistry } from "../registry/transfers.js";
import { startTransfer, type TransferDeps } from "../transfer/start.js";

export interface StudyArrivedDeps extends TransferDeps {
  transfers: TransferRegistry;
  log: Logger;
}

/**
 * A study (re)arrived. If it was already assigned and now has more images than its latest run saw,
 * run each transfer request again: late series reach the same project, and instances the
 * destination already has are not sent again.
 */
export async function processStudyArrived(job: Job<StudyArrivedJob>, deps: StudyArrivedDeps) {
  const uid = job.data.studyInstanceUid;
  const requests = await deps.transfers.forStudy(uid);
  const runs = [];
  for (const r of requests) {
    // Nothing new since that run started: the arrival only confirms what it is already sending.
    if (r.sourceFiles >= job.data.fileCount) continue;
    const { studyInstanceUid, project, participant, event } = r;
    const started = await startTransfer(deps, {
      studyInstanceUid,
      project,
      participant,
      ...(event !== undefined ? { event } : {}),
      requestedBy: "late-series",
    });
    runs.push(started);
    deps.log.info({ studyInstanceUid: uid, requestId: started.requestId, run: started.run }, "transfer re-run for arrived images");
  }
  return { reruns: runs.length };
}

export const studyArrivedProcessor = (deps: StudyArrivedDeps) => (job: Job<StudyArrivedJob>) => processStudyArrived(job, deps);
