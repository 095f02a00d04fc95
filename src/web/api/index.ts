/**
 * The REST API under /api: everything the Assign page does. Each resource declares its routes in the
 * registry (./routes.ts), from which /api/openapi.json is generated; ../csrf.ts has the write rules.
 * Grants are enforced on every call: a user never receives a project, participant list, transfer or
 * audit entry of a project that is not granted to them.
 */
import express, { type Router } from "express";
import { registerExportRoutes } from "../../export/web.js";
import { registerInventoryRoutes } from "../../inventory/web.js";
import { registerWsiUploadRoutes } from "../../wsi/web.js";
import { registerAuditRoutes } from "./audit.js";
import { jsonBody } from "./bodies.js";
import { createContext, type ApiDeps } from "./context.js";
import { registerCouplingRoutes } from "./coupling.js";
import { errorHandler, notFound } from "./errors.js";
import { registerFailureRoutes } from "./failures.js";
import { registerOpenApiRoute } from "./openapi.js";
import { principalOf } from "./principal.js";
import { registerProjectRoutes } from "./projects.js";
import { ApiRoutes } from "./routes.js";
import { registerSignIn, registerSignOut } from "./session.js";
import { registerStudyRoutes } from "./studies.js";
import { registerTransferRoutes } from "./transfers.js";

export function createApiRouter(deps: ApiDeps): Router {
  const ctx = createContext(deps);
  const { cfg, redis, users, sessions, logger, audit, principals } = ctx;
  const router = express.Router();
  const api = ApiRoutes.on(router, "/api");

  registerOpenApiRoute(api);
  registerSignIn(api, ctx);

  // Everything else needs a principal.
  router.use(principals.authenticate);
  router.use(jsonBody);

  registerSignOut(api, ctx);
  registerProjectRoutes(api, ctx);
  registerStudyRoutes(api, ctx);
  registerTransferRoutes(api, ctx);
  registerCouplingRoutes(api, ctx);
  registerAuditRoutes(api, ctx);
  registerFailureRoutes(api, ctx);

  registerExportRoutes(api, {
    cfg,
    redis,
    logger,
    caller: (res) => {
      const p = principalOf(res);
      return { user: p.user.name, canUse: (project) => users.canUseProject(p.user, project) };
    },
    audit: async (req, res, e) => {
      const p = principalOf(res);
      await audit
        .record({ user: p.user.name, via: p.via, ip: req.ip ?? "", ...e })
        .catch((err: Error) => logger.error({ err: err.message }, "web: audit write failed"));
    },
  });
  registerInventoryRoutes(api, {
    cfg,
    grantedProject: (res, name) => ctx.grantedProject(principalOf(res), name).name,
  });
  registerWsiUploadRoutes(api.scope("/wsi"), {
    cfg,
    redis,
    logger,
    canUse: (res, project) => users.canUseProject(principalOf(res).user, project),
  });

  router.use(notFound);
  router.use(errorHandler(sessions, principals.secureOf, logger));
  return router;
}
