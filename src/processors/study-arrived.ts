import type { Job, Queue } from "bullmq";
import type { Redis } from "ioredis";
import { triggerAnalyses, type AnalysisQueue } from "../analysis/trigger.js";
import type { AutomationSink } from "../automation/emit.js";
import { emitStudyArrived } from "../automation/triggers.js";
import type { Logger } from "../log.js";
import type { RedcapPushJob, StudyArrivedJob } from "../queues/index.js";
import type { TransferRegistry } from "../registry/transfers.js";
import { createRoutingDeps, pruneRouting, type RoutingDeps } from "../routing/deps.js";
import { routeStudy } from "../routing/route-study.js";
import { startTransfer, type TransferDeps } from "../transfer/start.js";
import type { Stage } from "./stage.js";

export interface StudyArrivedDeps extends TransferDeps {
  transfers: TransferRegistry;
  log: Logger;
  /**
   * Registries for routing rules, coupling lists and auto-ID. When absent they are built from the
   * configuration on the flow producer's Redis connection.
   */
  routing?: RoutingDeps;
  /** Set when REDCap is configured: the study is pushed to Incoming after routing. */
  redcapPush?: Queue<RedcapPushJob>;
  /** Set by the workers: analysis jobs triggered by the called AE title or a project's arrivals are queued. */
  analysisQueue?: AnalysisQueue;
  /** Set by the workers: study-arrived automation subscriptions fire (src/automation). */
  automationQueue?: AutomationSink["queue"];
}

/** Expired incoming-list entries and coupling rows are pruned by arrivals, at most this often per process. */
const PRUNE_EVERY_MS = 10 * 60 * 1000;
let lastPrune = 0;

const routingDepsCache = new WeakMap<StudyArrivedDeps, Promise<RoutingDeps>>();
function routingDeps(deps: StudyArrivedDeps): Promise<RoutingDeps> {
  if (deps.routing) return Promise.resolve(deps.routing);
  let p = routingDepsCache.get(deps);
  if (!p) {
    p = deps.flow
      .getBackend()
      .client.then((client) => createRoutingDeps(deps, client as unknown as Redis))
      .catch((e: unknown) => {
        routingDepsCache.delete(deps);
        throw e;
      });
    routingDepsCache.set(deps, p);
  }
  return p;
}

/**
 * A study (re)arrived.
 * 1. If it was already assigned and now has more images than its latest run saw, run each transfer
 *    request again: late series reach the same project, and instances the destination already has are
 *    not sent again.
 * 2. Evaluate coupling-list rows, routing rules and auto-ID (src/routing/route-study.ts) and start the
 *    transfers they ask for; requests already run for these images are not run again.
 * The job's result holds counts and request ids only.
 */
async function processStudyArrived(job: Job<StudyArrivedJob>, deps: StudyArrivedDeps) {
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
    deps.log.info(
      { studyInstanceUid: uid, requestId: started.requestId, run: started.run },
      "transfer re-run for arrived images",
    );
  }

  const routing = await routingDeps(deps);
  const outcomes = await routeStudy(routing, uid);

  if (Date.now() - lastPrune > PRUNE_EVERY_MS) {
    lastPrune = Date.now();
    const pruned = await pruneRouting(routing);
    if (pruned.studies || pruned.couplingRows)
      deps.log.info(pruned, "expired incoming-list entries and coupling rows pruned");
  }

  if (deps.redcapPush)
    await deps.redcapPush.add(
      "incoming-study",
      { redcapProject: "incoming", kind: "incoming-study", studyInstanceUid: uid },
      { jobId: `incoming-${uid}-${job.data.arrival}` },
    );

  if (deps.analysisQueue)
    await triggerAnalyses({ ...deps, queue: deps.analysisQueue }, uid, job.data.fileCount).catch(
      (e: unknown) =>
        deps.log.warn({ studyInstanceUid: uid, err: (e as Error).message }, "analysis jobs not queued"),
    );

  if (deps.automationQueue) {
    const projects = (await deps.transfers.forStudy(uid)).map((r) => r.project);
    await emitStudyArrived(
      { cfg: deps.cfg, queue: deps.automationQueue },
      deps,
      uid,
      projects,
      job.data.arrival,
    );
  }

  return {
    reruns: runs.length,
    started: outcomes.filter((o) => o.status === "started").map((o) => o.requestId),
    skipped: outcomes.filter((o) => o.status !== "started").length,
  };
}

export const studyArrivedProcessor: Stage<
  StudyArrivedDeps,
  StudyArrivedJob,
  Awaited<ReturnType<typeof processStudyArrived>>
> = (deps) => (job) => processStudyArrived(job, deps);
