/** /coupling: upload a coupling list (CSV) that assigns studies by accession number, now and on arrival. */
import { uploadCouplingList } from "../../routing/coupling-upload.js";
import { parseCouplingCsv } from "../../routing/coupling.js";
import { csvBody } from "./bodies.js";
import type { ApiContext } from "./context.js";
import { HttpError } from "./http-error.js";
import { principalOf } from "./principal.js";
import { flag } from "./query.js";
import { ok } from "./replies.js";
import type { ApiRoutes } from "./routes.js";
import { CouplingProblems, CouplingResult } from "./schemas.js";
import { z } from "./zod.js";

export function registerCouplingRoutes(api: ApiRoutes, ctx: ApiContext): void {
  const { cfg, users, studies, views, audit, logger, snapshot } = ctx;

  api.route(
    {
      method: "post",
      path: "/coupling",
      summary: "Upload a coupling list (CSV); with dryRun=true only preview what it would match",
      description:
        "Columns AccessionNumber, ProjectName, subjectid, eventname (optional StudyInstanceUID). Every row must " +
        "name a project granted to the caller (403 otherwise). All or nothing: a list with problems stores nothing. " +
        "Rows are kept for coupling.expiryDays and applied to studies that arrive later.",
      query: z.object({ dryRun: flag("Preview only") }),
      body: z.string().refine((csv) => csv.trim() !== ""),
      bodyType: "text/csv",
      invalid: () => "send the coupling list as text/csv",
      responses: {
        200: ok(CouplingResult),
        400: ok(CouplingProblems, "The list has problems (with line numbers); nothing was stored"),
      },
      before: [csvBody],
    },
    async (req, res, input) => {
      const p = principalOf(res);
      const csv = input.body();
      const { dryRun } = input.query();
      // Every row must name a project granted to the user (checked before anything is stored or matched).
      const parsed = parseCouplingCsv(csv, cfg.projects);
      const denied = [...new Set(parsed.rows.map((r) => r.project))].filter(
        (x) => !users.canUseProject(p.user, x),
      );
      if (denied.length)
        throw new HttpError(403, `not granted to ${p.user.name}: project ${denied.join(", ")}`);
      const result = await uploadCouplingList(ctx.routing, csv, p.user.name, { dryRun });
      if (!dryRun) snapshot.changed();
      if (result.errors.length) {
        res.status(400).json({
          error: `the list has ${result.errors.length} problem${result.errors.length === 1 ? "" : "s"}; nothing was stored`,
          errors: result.errors,
        });
        return;
      }
      const matches = await Promise.all(
        result.matchedNow.map(async (m) => {
          const entry = await studies.get(m.studyInstanceUid);
          const v = entry ? await views.view(entry, []) : undefined;
          return {
            ...m,
            ...(v?.studyDate ? { studyDate: v.studyDate } : {}),
            ...(v?.studyDescription ? { studyDescription: v.studyDescription } : {}),
            ...(v?.accessionNumber ? { accessionNumber: v.accessionNumber } : {}),
          };
        }),
      );
      if (!dryRun) {
        const started = result.matchedNow.filter((m) => m.status === "started");
        const record = async () => {
          await audit.record({
            user: p.user.name,
            action: "coupling-upload",
            via: p.via,
            ip: req.ip ?? "",
            detail: `${result.rows.length} rows, ${result.stored} stored, ${started.length} transfers started`,
          });
          for (const m of started) {
            await audit.record({
              user: p.user.name,
              action: "assign",
              via: p.via,
              ip: req.ip ?? "",
              study: m.studyInstanceUid,
              project: m.project,
              participant: m.participant,
              ...(m.event ? { event: m.event } : {}),
              requestId: m.requestId,
              ...(m.run !== undefined ? { run: m.run } : {}),
              detail: "coupling list",
            });
          }
        };
        await record().catch((e: Error) => logger.error({ err: e.message }, "web: audit write failed"));
      }
      res.json({
        dryRun,
        rows: result.rows.map((r) => ({
          line: r.line,
          ...(r.accessionNumber ? { accessionNumber: r.accessionNumber } : {}),
          ...(r.studyInstanceUid ? { studyInstanceUid: r.studyInstanceUid } : {}),
          project: r.project,
          participant: r.participant,
          ...(r.event ? { event: r.event } : {}),
        })),
        stored: result.stored,
        matches,
      });
    },
  );
}
