import type { SitePaths } from "../paths.js";
import type { RedcapPushJob } from "../queues/index.js";
import type { StudyRegistry } from "../registry/studies.js";
import type { TransferRegistry } from "../registry/transfers.js";
import { runRedcapJob, stageClient, type RedcapStageDeps } from "../redcap/stage.js";
import { redcapToken } from "../redcap/client.js";
import { pushIncomingStudy, writeParticipantImaging, writeTransferResult } from "../redcap/sync.js";
import type { Stage } from "./stage.js";

export interface RedcapPushDeps extends RedcapStageDeps {
  paths: SitePaths;
  transfers: TransferRegistry;
  /** For the study description of imaging rows (optional). */
  studies?: StudyRegistry;
}

/** Write to REDCap: an arrived study into Incoming, or a transfer result back to its request row. */
export const redcapPushProcessor: Stage<RedcapPushDeps, RedcapPushJob, unknown> = (deps) => {
  const client = stageClient(deps);
  return (job, token) =>
    runRedcapJob(deps, job, token, async () => {
      const d = job.data;
      const c = client(d.redcapProject);
      if (d.kind === "incoming-study") {
        const series = await pushIncomingStudy(c, deps.paths, d.studyInstanceUid);
        deps.log.info({ studyInstanceUid: d.studyInstanceUid, series }, "study pushed to REDCap Incoming");
        return { series };
      }
      const t = d.requestId ? await deps.transfers.get(d.requestId) : undefined;
      if (!t || t.status === "queued") return { skipped: true };
      const instance = await writeTransferResult(c, deps.redis, deps.cfg.redis.prefix, t);
      // The research project's own REDCap, when it has a token: participant record + imaging repeat.
      const projectDb = `project:${t.project}`;
      if (redcapToken(deps.cfg.redcap, projectDb)) {
        const study = await deps.studies?.get(t.studyInstanceUid);
        await writeParticipantImaging(client(projectDb), t, study?.studyDescription ?? "");
      }
      deps.log.info(
        { studyInstanceUid: t.studyInstanceUid, requestId: t.requestId, status: t.status, instance },
        "transfer result written to REDCap",
      );
      return { instance };
    });
};
