/** `GET /api/inventory/:project`: the stored inventory and reconciliation of a granted project (read-only). */
import type { Response } from "express";
import type { FionaConfig } from "../config/schema.js";
import { SitePaths } from "../paths.js";
import { HttpError } from "../web/api/http-error.js";
import { error, ok } from "../web/api/replies.js";
import type { ApiRoutes } from "../web/api/routes.js";
import { z } from "../web/api/zod.js";
import { inventoryProjects } from "./run.js";
import { InventoryStore } from "./store.js";
import { inventoryView } from "./view.js";

export interface InventoryRouteDeps {
  cfg: FionaConfig;
  /** The project if the caller may see it; throws the API's 404 otherwise. */
  grantedProject(res: Response, name: string): string;
}

const InventoryView = z
  .object({
    project: z.string(),
    inventory: z.record(z.unknown()).optional(),
    reconciliation: z.record(z.unknown()).optional(),
  })
  .openapi("InventoryView");

export function registerInventoryRoutes(api: ApiRoutes, deps: InventoryRouteDeps): void {
  const store = new InventoryStore(new SitePaths(deps.cfg.dataDir));
  api.route(
    {
      method: "get",
      path: "/inventory/:project",
      summary:
        "The research PACS's studies of a project (last crawl) and the reconciliation with FIONA's transfers",
      params: z.object({ project: z.string().describe("Project name") }),
      responses: {
        200: ok(
          InventoryView,
          "project; inventory (crawledAt, complete, incompleteBuckets, queries, studies) and reconciliation " +
            "(missingInPacs, notSentByFiona), each absent before the first crawl. Patient ID and name, " +
            "accession number and referring physician only with web.showPatientIdentity.",
        ),
        404: error("No such project for this user, or not inventoried"),
      },
    },
    async (_req, res, input) => {
      const project = deps.grantedProject(res, input.params().project);
      if (!inventoryProjects(deps.cfg).includes(project))
        throw new HttpError(404, `project ${project} is not inventoried`);
      res.json(await inventoryView(store, project, deps.cfg.web.showPatientIdentity));
    },
  );
}
