import { UnrecoverableError, type Job, type Queue } from "bullmq";
import type { Redis } from "ioredis";
import { FindError } from "../dimse/find.js";
import { pushToWhatIsInIds7, type Ids7Push } from "../inventory/redcap.js";
import {
  crawlAndStore,
  inventoryPacs,
  inventoryProjects,
  reconcileStored,
  type InventoryDeps,
} from "../inventory/run.js";
import type { InventoryJob } from "../queues/index.js";
import { redcapToken } from "../redcap/client.js";
import { runRedcapJob, stageClient, type RedcapStageDeps } from "../redcap/stage.js";
import type { Stage } from "./stage.js";

export interface InventoryProcessorDeps extends InventoryDeps {
  redis: Redis;
  /** REDCap queues paused together when REDCap bans this host. */
  redcapQueues?: readonly Queue[];
}

export interface ProjectOutcome {
  project: string;
  studies?: number;
  complete?: boolean;
  missingInPacs?: number;
  notSentByFiona?: number;
  redcap?: Ids7Push;
  skipped?: string;
}

/**
 * crawl: C-FIND the research PACS for each project (or the one in the job), store the inventory, push
 * it to WhatIsInIDS7 when REDCap has a token for it, and reconcile. reconcile: compare the stored
 * inventory with FIONA's transfers again (transfers finish between crawls).
 */
async function processInventory(
  job: Job<InventoryJob>,
  deps: InventoryProcessorDeps,
  token?: string,
): Promise<ProjectOutcome[]> {
  const { cfg } = deps;
  const known = inventoryProjects(cfg);
  if (job.data.project !== undefined && !known.includes(job.data.project))
    throw new UnrecoverableError(`project ${job.data.project} is not inventoried (inventory.projects)`);
  const projects = job.data.project !== undefined ? [job.data.project] : known;
  if (job.data.kind === "crawl") {
    try {
      inventoryPacs(cfg);
    } catch (e) {
      throw new UnrecoverableError((e as Error).message);
    }
  }
  const redcapCfg = cfg.redcap && redcapToken(cfg.redcap, cfg.inventory.redcap) ? cfg.redcap : undefined;
  const stage: RedcapStageDeps | undefined = redcapCfg
    ? {
        cfg: { ...cfg, redcap: redcapCfg },
        redis: deps.redis,
        log: deps.log,
        redcapQueues: deps.redcapQueues ?? [],
      }
    : undefined;
  const client = stage ? stageClient(stage) : undefined;

  const outcomes: ProjectOutcome[] = [];
  for (const project of projects) {
    const out: ProjectOutcome = { project };
    if (job.data.kind === "crawl") {
      const inv = await crawlAndStore(deps, project).catch((e: unknown) => {
        // A refused AE title stays refused: fail at once instead of retrying.
        throw e instanceof FindError && !e.retryable ? new UnrecoverableError(e.message) : e;
      });
      out.studies = inv.studies.length;
      out.complete = inv.complete;
      if (stage && client)
        out.redcap = await runRedcapJob(stage, job, token, () =>
          pushToWhatIsInIds7(client(cfg.inventory.redcap), inv),
        );
    }
    const r = await reconcileStored(deps, project);
    if (r) {
      out.complete = r.complete;
      out.missingInPacs = r.missingInPacs.length;
      out.notSentByFiona = r.notSentByFiona.length;
    } else out.skipped = "not crawled yet";
    outcomes.push(out);
  }
  return outcomes;
}

export const inventoryProcessor: Stage<InventoryProcessorDeps, InventoryJob, ProjectOutcome[]> =
  (deps) => (job, token) =>
    processInventory(job, deps, token);
