/** `GET /api/inventory/:project`: the stored inventory and reconciliation of a granted project (read-only). */
import type { Response, Router } from "express";
import type { FionaConfig } from "../config/schema.js";
import { SitePaths } from "../paths.js";
import { inventoryProjects } from "./run.js";
import { InventoryStore } from "./store.js";
import { inventoryView } from "./view.js";

export interface InventoryRouteDeps {
  cfg: FionaConfig;
  /** The project if the caller may see it; throws the API's 404 otherwise. */
  grantedProject(res: Response, name: string): string;
  httpError(status: number, message: string): Error;
}

export function registerInventoryRoutes(router: Router, deps: InventoryRouteDeps): void {
  const store = new InventoryStore(new SitePaths(deps.cfg.dataDir));
  router.get("/inventory/:project", async (req, res) => {
    const project = deps.grantedProject(res, String(req.params.project));
    if (!inventoryProjects(deps.cfg).includes(project))
      throw deps.httpError(404, `project ${project} is not inventoried`);
    res.json(await inventoryView(store, project, deps.cfg.web.showPatientIdentity));
  });
}
