/** /failures: what each stage refused or gave up on (its quarantine), with retry and dismiss. */
import type { Request, Response } from "express";
import { actOnQuarantined } from "../../quarantine/actions.js";
import type { QuarantineRecord } from "../../quarantine/record.js";
import { RetryRefused } from "../../quarantine/retry.js";
import { QuarantineStore } from "../../quarantine/store.js";
import { ALL_QUEUES, type QueueName } from "../../queues/index.js";
import type { ApiContext } from "./context.js";
import { HttpError } from "./http-error.js";
import { principalOf, type Principal } from "./principal.js";
import { choice, count } from "./query.js";
import { error, ok } from "./replies.js";
import type { ApiRoutes } from "./routes.js";
import { QuarantineRecordSchema, RetryOutcomeSchema } from "./schemas.js";
import { z } from "./zod.js";

const idParam = z.object({
  id: z
    .string()
    .regex(/^[0-9a-f]{16}$/)
    .describe("Quarantine record id"),
});

export function registerFailureRoutes(api: ApiRoutes, ctx: ApiContext): void {
  const { cfg, redis, users, audit } = ctx;
  const store = new QuarantineStore(redis, cfg.redis.prefix, ctx.logger);
  /** Admins see every record; others only those of a project granted to them. */
  const visible = (p: Principal, r: QuarantineRecord) =>
    p.user.role === "admin" || (r.ids.project !== undefined && users.canUseProject(p.user, r.ids.project));

  api.route(
    {
      method: "get",
      path: "/failures",
      summary: "Each stage's quarantine, newest first (admins: everything; others: their projects)",
      query: z.object({
        stage: choice(ALL_QUEUES as [QueueName, ...QueueName[]], "Only this stage"),
        limit: count(500, 5000, "At most this many (default 500)"),
      }),
      responses: { 200: ok(z.object({ failures: z.array(QuarantineRecordSchema) })) },
    },
    async (_req, res, input) => {
      const p = principalOf(res);
      const { stage, limit } = input.query();
      const all = await store.list(stage ? { stage } : {});
      res.json({ failures: all.filter((r) => visible(p, r)).slice(0, limit) });
    },
  );

  const act = (action: "retry" | "dismiss") => async (req: Request, res: Response, id: string) => {
    const p = principalOf(res);
    const record = await store.get(id);
    if (!record || !visible(p, record)) throw new HttpError(404, `no quarantine record ${id}`);
    try {
      const outcome = await actOnQuarantined({ ...ctx.routing, store, audit }, action, id, {
        user: p.user.name,
        via: p.via,
        ip: req.ip ?? "",
      });
      res.status(action === "retry" ? 202 : 200).json(outcome);
    } catch (e) {
      if (e instanceof RetryRefused) throw new HttpError(e.status, e.message);
      throw e;
    }
  };

  api.route(
    {
      method: "post",
      path: "/failures/:id/retry",
      summary: "Run a quarantined object through its stage again (a transfer's series: a new run)",
      params: idParam,
      responses: {
        202: ok(RetryOutcomeSchema, "Queued again"),
        404: error("Unknown, or not granted"),
        409: error("The transfer is running"),
      },
    },
    async (req, res, input) => act("retry")(req, res, input.params().id),
  );

  api.route(
    {
      method: "post",
      path: "/failures/:id/dismiss",
      summary: "Drop a quarantine record (the data stays where it is)",
      params: idParam,
      responses: { 200: ok(RetryOutcomeSchema, "Dismissed"), 404: error("Unknown, or not granted") },
    },
    async (req, res, input) => act("dismiss")(req, res, input.params().id),
  );
}
