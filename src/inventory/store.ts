/**
 * Where the inventory is kept: one JSON file per project under <data>/site/inventory/, replaced
 * atomically by each crawl, and the project's latest reconciliation beside it. On disk, not in Redis:
 * the PACS lists patient names and IDs (pseudonyms for what FIONA sent, but a study stored there
 * directly may carry real ones), and Redis never holds those.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { readJsonIfExists, writeFileAtomic } from "../fs/atomic.js";
import { safePathComponent, type SitePaths } from "../paths.js";
import type { Reconciliation } from "./reconcile.js";
import type { InventoryStudy } from "./studies.js";

export interface ProjectInventory {
  project: string;
  /** ISO time the crawl finished. */
  crawledAt: string;
  complete: boolean;
  incompleteBuckets: string[];
  queries: number;
  studies: InventoryStudy[];
}

export class InventoryStore {
  readonly dir: string;
  constructor(paths: SitePaths) {
    this.dir = path.join(paths.site, "inventory");
  }

  private file(project: string, kind: "inventory" | "reconcile"): string {
    return path.join(this.dir, `${safePathComponent(project)}.${kind}.json`);
  }

  async saveInventory(inv: ProjectInventory): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    await writeFileAtomic(this.file(inv.project, "inventory"), JSON.stringify(inv));
  }

  inventory(project: string): Promise<ProjectInventory | undefined> {
    return readJsonIfExists<ProjectInventory>(this.file(project, "inventory"));
  }

  async saveReconciliation(r: Reconciliation): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    await writeFileAtomic(this.file(r.project, "reconcile"), JSON.stringify(r));
  }

  reconciliation(project: string): Promise<Reconciliation | undefined> {
    return readJsonIfExists<Reconciliation>(this.file(project, "reconcile"));
  }
}
