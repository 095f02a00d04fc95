import { UnrecoverableError, type Job } from "bullmq";
import { isPathSafeUid } from "../dicom/uid.js";
import type { ReclassifyJob } from "../queues/index.js";
import { reclassifyStudy, type ReclassifyDeps, type ReclassifyResult } from "../reclassify/run.js";
import type { Stage } from "./stage.js";

/** Re-run classification of one study with the current rules (src/reclassify/run.ts). */
async function processReclassify(job: Job<ReclassifyJob>, deps: ReclassifyDeps): Promise<ReclassifyResult> {
  const uid = job.data.studyInstanceUid;
  if (!isPathSafeUid(uid)) throw new UnrecoverableError("not a valid StudyInstanceUID");
  return reclassifyStudy(deps, uid);
}

export const reclassifyProcessor: Stage<ReclassifyDeps, ReclassifyJob, ReclassifyResult> = (deps) => (job) =>
  processReclassify(job, deps);
