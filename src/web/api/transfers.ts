/** /transfers: assign a study (start its transfer), preview it, follow transfers and retry them. */
import type { Request } from "express";
import type { TransferRecord } from "../../registry/transfers.js";
import { assignStudy, type AssignedTransfer } from "../../routing/assign.js";
import { retryTransfer, TransferRetryRefused } from "../../routing/retry.js";
import { ReassignmentRefused } from "../../transfer/reassign.js";
import {
  InvalidRequestError,
  requestId as requestIdOf,
  validateRequest,
  type TransferRequest,
} from "../../transfer/request.js";
import { studyFileCount, studySeries } from "../../ingest/study-files.js";
import type { StartedTransfer } from "../../transfer/start.js";
import { peerLabel, scuDestination } from "../../dimse/connect.js";
import { projectDestination } from "../../transfer/stage.js";
import type { ApiContext } from "./context.js";
import { HttpError } from "./http-error.js";
import { liveStatus, type LiveStatus } from "../../transfer/live-status.js";
import { principalOf, type Principal } from "./principal.js";
import { count, requiredText, text } from "./query.js";
import { error, ok } from "./replies.js";
import type { ApiRoutes } from "./routes.js";
import { Preview, Started, Transfer } from "./schemas.js";
import { studyDetail } from "./studies.js";
import { z } from "./zod.js";

const assignBody = z
  .object({
    studyInstanceUid: z.string().min(1).max(64),
    project: z.string().min(1).max(64),
    participant: z.string().min(1).max(64),
    event: z.string().max(64).nullish(),
    /** Confirms sending a study already sent for the project as another participant. */
    replace: z.boolean().optional(),
  })
  .strict()
  .openapi("AssignRequest");

const previewQuery = z.object({
  study: requiredText("StudyInstanceUID"),
  project: requiredText("Project"),
  participant: requiredText("Participant"),
  event: text("Event"),
});

const idParam = z.object({ requestId: z.string().describe("Transfer request id") });

export function registerTransferRoutes(api: ApiRoutes, ctx: ApiContext): void {
  const { cfg, users, flow, paths, studies, transfers, views, snapshot, audit, logger } = ctx;

  const studyCache = new Map<
    string,
    { studyDate?: string; studyDescription?: string; accessionNumber?: string }
  >();

  async function transferView(t: TransferRecord, live?: LiveStatus) {
    let study = studyCache.get(t.studyInstanceUid);
    if (!study) {
      const entry = await studies.get(t.studyInstanceUid);
      const v = entry ? await views.view(entry, []) : undefined;
      study = {
        ...(v?.studyDate ? { studyDate: v.studyDate } : {}),
        ...(v?.studyDescription ? { studyDescription: v.studyDescription } : {}),
        ...(v?.accessionNumber ? { accessionNumber: v.accessionNumber } : {}),
      };
      if (entry?.status === "arrived") studyCache.set(t.studyInstanceUid, study);
      if (studyCache.size > 5000) studyCache.delete(studyCache.keys().next().value!);
    }
    const project = cfg.projects.find((x) => x.name === t.project);
    const d = project ? projectDestination(cfg, project) : undefined;
    const dest = d ? peerLabel(scuDestination(d, cfg.aeTitle)) : undefined;
    return {
      ...t,
      ...(dest ? { destination: dest } : {}),
      study,
      live: live ?? (await liveStatus(flow, t)),
    };
  }

  async function visibleTransfer(p: Principal, id: string): Promise<TransferRecord> {
    const t = /^[0-9a-f]{8,64}$/.test(id) ? await transfers.get(id) : undefined;
    if (!t || !users.canUseProject(p.user, t.project)) throw new HttpError(404, "unknown transfer");
    return t;
  }

  async function preview(
    p: Principal,
    r: { study: string; project: string; participant: string; event?: string },
  ) {
    const project = cfg.projects.find((x) => x.name === r.project);
    if (!project || !users.canUseProject(p.user, r.project)) {
      throw new HttpError(403, `project ${r.project} is not granted to ${p.user.name}`);
    }
    const request = {
      studyInstanceUid: r.study,
      project: r.project,
      participant: r.participant,
      ...(r.event ? { event: r.event } : {}),
      requestedBy: p.user.name,
    };
    try {
      validateRequest(request, cfg.projects);
    } catch (e) {
      if (e instanceof InvalidRequestError) throw new HttpError(400, e.message);
      throw e;
    }
    const destination = projectDestination(cfg, project);
    if (!destination)
      throw new HttpError(
        400,
        `project ${project.name} has no destination and no researchPacs is configured`,
      );
    const detail = await studyDetail(ctx, p, r.study);
    const onDisk = await studySeries(paths, r.study);
    if (onDisk.length === 0) throw new HttpError(400, "no images of this study are on disk");
    const fileCount = await studyFileCount(paths, r.study, onDisk);
    const id = requestIdOf(request);
    const existing = await transfers.get(id);
    const all = await snapshot.all();
    const newParticipant = !all.some((t) => t.project === project.name && t.participant === r.participant);
    const warnings: string[] = [];
    if (detail.status === "receiving")
      warnings.push("Images of this study are still arriving; later images follow automatically.");
    if (existing) {
      warnings.push(
        `This study was already assigned to ${project.name} / ${r.participant}${r.event ? ` / ${r.event}` : ""}; only images the research PACS has not accepted yet will be sent.`,
      );
    }
    const others = all.filter(
      (t) => t.studyInstanceUid === r.study && t.project === project.name && t.participant !== r.participant,
    );
    if (others.length) {
      warnings.push(
        `This study is already assigned in ${project.name} to participant ${[...new Set(others.map((t) => t.participant))].join(", ")}.`,
      );
    }
    if (newParticipant) warnings.push(`${r.participant} is a new participant in ${project.name}.`);
    const view = {
      requestId: id,
      study: detail,
      project: project.name,
      participant: r.participant,
      ...(r.event ? { event: r.event } : {}),
      destination: { aeTitle: destination.aeTitle, host: destination.host, port: destination.port },
      seriesCount: onDisk.length,
      fileCount,
      newParticipant,
      existing: existing ? await transferView(existing) : null,
      warnings,
    };
    return { view, request };
  }

  /** Start a run (`start`), answer its refusals as HTTP errors, and audit it. */
  async function run(
    req: Request,
    p: Principal,
    request: TransferRequest,
    action: "assign" | "retry",
    start: () => Promise<AssignedTransfer>,
  ): Promise<StartedTransfer> {
    let started: AssignedTransfer;
    try {
      started = await start();
      snapshot.changed();
    } catch (e) {
      if (e instanceof TransferRetryRefused) throw new HttpError(e.status, e.message);
      if (e instanceof InvalidRequestError) throw new HttpError(400, e.message);
      if (e instanceof ReassignmentRefused)
        throw new HttpError(409, e.message, {
          code: "reassign",
          participants: [...new Set(e.earlier.map((t) => t.participant))],
        });
      throw e;
    }
    await audit
      .record({
        user: p.user.name,
        action: started.reassignedFrom ? "reassign" : action,
        ...(started.reassignedFrom
          ? { detail: `from participant ${started.reassignedFrom.join(", ")}` }
          : {}),
        via: p.via,
        ip: req.ip ?? "",
        study: request.studyInstanceUid,
        project: request.project,
        participant: request.participant,
        ...(request.event ? { event: request.event } : {}),
        requestId: started.requestId,
        run: started.run,
      })
      .catch((e: Error) =>
        logger.error({ err: e.message, requestId: started.requestId }, "web: audit write failed"),
      );
    return started;
  }

  async function refuseIfRunning(id: string) {
    const t = await transfers.get(id);
    if (t && !(await liveStatus(flow, t)).retryable) {
      throw new HttpError(409, "this transfer is running; wait for it to finish before sending it again");
    }
  }

  api.route(
    {
      method: "get",
      path: "/transfers",
      summary: "Transfer history with live status (visible projects only), newest first",
      query: z.object({
        project: text("Only this project"),
        study: text("Only this StudyInstanceUID"),
        limit: count(100, 1000, "At most this many (default 100)"),
      }),
      responses: { 200: ok(z.array(Transfer)) },
    },
    async (_req, res, input) => {
      const p = principalOf(res);
      const { project, study, limit } = input.query();
      const list = (await snapshot.all())
        .filter((t) => users.canUseProject(p.user, t.project))
        .filter((t) => !project || t.project === project)
        .filter((t) => !study || t.studyInstanceUid === study)
        .slice(0, limit);
      res.json(await Promise.all(list.map((t) => transferView(t))));
    },
  );

  api.route(
    {
      method: "get",
      path: "/transfers/preview",
      summary: "What an assignment would send where (the confirmation), without starting it",
      query: previewQuery,
      invalid: () => "study, project and participant are required",
      responses: { 200: ok(Preview), 400: error("Invalid request") },
    },
    async (_req, res, input) => {
      const p = principalOf(res);
      const { study, project, participant, event } = input.query();
      const { view } = await preview(p, {
        study,
        project,
        participant,
        ...(event ? { event } : {}),
      });
      res.json(view);
    },
  );

  api.route(
    {
      method: "post",
      path: "/transfers",
      summary: "Assign a study: start its transfer to the project's research PACS",
      body: assignBody,
      invalid: (i) => `send {studyInstanceUid, project, participant, event?}: ${i?.message ?? ""}`,
      responses: {
        202: ok(Started, "Transfer started"),
        400: error("Invalid request (pattern, event, no images)"),
        409: error("Running already, or a re-assignment to another participant to confirm (code: reassign)"),
      },
    },
    async (req, res, input) => {
      const p = principalOf(res);
      const b = input.body();
      const { request } = await preview(p, {
        study: b.studyInstanceUid,
        project: b.project,
        participant: b.participant,
        ...(b.event ? { event: b.event } : {}),
      });
      await refuseIfRunning(requestIdOf(request));
      const started = await run(req, p, request, "assign", () =>
        assignStudy(ctx.routing, request, { replace: b.replace === true }),
      );
      res.status(202).json(started);
    },
  );

  api.route(
    {
      method: "get",
      path: "/transfers/:requestId",
      summary: "One transfer with live status",
      params: idParam,
      responses: { 200: ok(Transfer), 404: error("Unknown, or not granted") },
    },
    async (_req, res, input) => {
      const t = await visibleTransfer(principalOf(res), input.params().requestId);
      res.json(await transferView(t));
    },
  );

  api.route(
    {
      method: "post",
      path: "/transfers/:requestId/retry",
      summary: "Run a transfer again (sends what the destination has not accepted yet)",
      params: idParam,
      responses: {
        202: ok(Started, "Transfer started"),
        404: error("Unknown, or not granted"),
        409: error("Still running"),
      },
    },
    async (req, res, input) => {
      const p = principalOf(res);
      const t = await visibleTransfer(p, input.params().requestId);
      const request = {
        studyInstanceUid: t.studyInstanceUid,
        project: t.project,
        participant: t.participant,
        ...(t.event ? { event: t.event } : {}),
        requestedBy: p.user.name,
      };
      const started = await run(req, p, request, "retry", async () => {
        return (await retryTransfer(ctx.routing, t.requestId, p.user.name)).started;
      });
      res.status(202).json(started);
    },
  );
}
