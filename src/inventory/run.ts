/**
 * One crawl of one project against the research PACS, its storage and its reconciliation: shared by
 * the inventory processor and `fiona inventory --refresh`. Logs carry the project and counts only.
 */
import type { FionaConfig } from "../config/schema.js";
import { scuDestination } from "../dimse/connect.js";
import { cFind, type FindDestination } from "../dimse/find.js";
import type { Logger } from "../log.js";
import type { SitePaths } from "../paths.js";
import type { TransferRegistry } from "../registry/transfers.js";
import { crawlProject } from "./crawl.js";
import { reconcile, sentStudies, type Reconciliation } from "./reconcile.js";
import { InventoryStore, type ProjectInventory } from "./store.js";
import { STUDY_KEYS } from "./studies.js";

export interface InventoryDeps {
  cfg: FionaConfig;
  paths: SitePaths;
  transfers: TransferRegistry;
  log: Logger;
}

/** Every transfer request: the registry lists the most recent first, this many at most. */
const ALL_TRANSFERS = 1_000_000;

/** The Q/R SCP the inventory asks: inventory.pacs, else the default research PACS. */
export function inventoryPacs(cfg: FionaConfig): FindDestination {
  const d = cfg.inventory.pacs ?? cfg.researchPacs;
  if (!d) throw new Error("no research PACS to inventory: set inventory.pacs or researchPacs");
  return scuDestination(d, cfg.aeTitle);
}

/** The projects crawled: inventory.projects, else every configured project. */
export function inventoryProjects(cfg: FionaConfig): string[] {
  return cfg.inventory.projects ?? cfg.projects.map((p) => p.name);
}

export async function crawlAndStore(deps: InventoryDeps, project: string): Promise<ProjectInventory> {
  const { cfg, log } = deps;
  const o = cfg.inventory;
  const pacs = inventoryPacs(cfg);
  const keys = Object.fromEntries(STUDY_KEYS.map((k) => [k, ""]));
  const started = Date.now();
  const result = await crawlProject(
    (patientIdKey) =>
      cFind(
        pacs,
        "STUDY",
        { ...keys, InstitutionName: project, PatientID: patientIdKey },
        { timeoutMs: o.timeoutMs },
      ),
    project,
    { alphabet: o.bucketAlphabet, maxDepth: o.bucketDepth, pauseMs: o.pauseMs },
  );
  const inventory: ProjectInventory = { project, crawledAt: new Date().toISOString(), ...result };
  await new InventoryStore(deps.paths).saveInventory(inventory);
  const fields = {
    project,
    studies: result.studies.length,
    queries: result.queries,
    ms: Date.now() - started,
  };
  if (result.complete) log.info(fields, "research PACS inventory crawled");
  else
    log.warn(
      { ...fields, incompleteBuckets: result.incompleteBuckets },
      "research PACS inventory incomplete",
    );
  return inventory;
}

/** Compare the project's stored inventory with FIONA's transfers and store the result. */
export async function reconcileStored(
  deps: InventoryDeps,
  project: string,
): Promise<Reconciliation | undefined> {
  const store = new InventoryStore(deps.paths);
  const inventory = await store.inventory(project);
  if (!inventory) return undefined;
  const sent = sentStudies(await deps.transfers.list(ALL_TRANSFERS), project);
  const r = reconcile(inventory, sent);
  await store.saveReconciliation(r);
  deps.log.info(
    {
      project,
      complete: r.complete,
      pacsStudies: r.pacsStudies,
      sentStudies: r.sentStudies,
      missingInPacs: r.missingInPacs.length,
      notSentByFiona: r.notSentByFiona.length,
    },
    "research PACS reconciled",
  );
  return r;
}
