/** /audit: the audit log, newest first (admins: everything; others: their projects). */
import type { ApiContext } from "./context.js";
import { principalOf } from "./principal.js";
import { count, text } from "./query.js";
import { ok } from "./replies.js";
import type { ApiRoutes } from "./routes.js";
import { AuditEntry } from "./schemas.js";
import { z } from "./zod.js";

export function registerAuditRoutes(api: ApiRoutes, ctx: ApiContext): void {
  const { cfg, users, audit } = ctx;
  api.route(
    {
      method: "get",
      path: "/audit",
      summary: "Audit log, newest first (admins: everything; others: their projects)",
      query: z.object({
        limit: count(100, 1000, "At most this many (default 100)"),
        before: text("Only entries older than this id (paging)"),
      }),
      responses: { 200: ok(z.array(AuditEntry)) },
    },
    async (_req, res, input) => {
      const p = principalOf(res);
      const { limit, before } = input.query();
      const entries = await audit.list({
        limit,
        ...(before && /^\d+-\d+$/.test(before) ? { before } : {}),
        ...(p.user.role === "admin"
          ? {}
          : { projects: new Set(users.visibleProjects(p.user, cfg.projects).map((x) => x.name)) }),
      });
      res.json(entries);
    },
  );
}
