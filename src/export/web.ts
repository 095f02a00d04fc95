import { createReadStream } from "node:fs";
import type { Request, Response } from "express";
import type { Redis } from "ioredis";
import type { FionaConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import { SitePaths } from "../paths.js";
import { QUEUES, createQueue } from "../queues/index.js";
import { TransferRegistry } from "../registry/transfers.js";
import { InvalidRequestError } from "../transfer/request.js";
import { buildExport, ExportError } from "./build.js";
import { exportRequest } from "./request.js";
import { forwardNoAssign, noAssignDestination } from "./noassign.js";
import { PermanentSendError, RetryableSendError } from "../dimse/index.js";
import { ExportStore, LAYOUTS, type ExportRecord } from "./store.js";
import { HttpError } from "../web/api/http-error.js";
import { error, ok } from "../web/api/replies.js";
import type { ApiRoutes, Reply } from "../web/api/routes.js";
import { z } from "../web/api/zod.js";

/** What the API lends the export routes: the caller's grants and the audit log. */
export interface ExportRouteDeps {
  cfg: FionaConfig;
  redis: Redis;
  logger: Logger;
  /** The caller's name and whether it may use the project (admins: every project). */
  caller(res: Response): { user: string; canUse(project: string): boolean };
  /** Writes an audit entry (src/registry/audit.ts) with the caller, how they signed in and their address. */
  audit?(req: Request, res: Response, entry: ExportAuditEntry): Promise<void>;
}

export interface ExportAuditEntry {
  action: "export" | "noassign-download" | "noassign-forward";
  study: string;
  project: string;
  participant: string;
  event?: string;
  detail?: string;
}

const target = {
  studyInstanceUid: z.string().min(1).max(64),
  project: z.string().min(1).max(64),
  participant: z.string().min(1).max(64),
  event: z.string().max(64).nullish(),
};

const exportBody = z
  .object({ ...target, layout: z.enum(LAYOUTS).default("DEFAULT") })
  .strict()
  .openapi("ExportRequest");
const noAssignBody = z.object(target).strict().openapi("NoAssignRequest");
const forwardBody = z
  .object({ ...target, destination: z.string().min(1).max(64) })
  .strict()
  .openapi("NoAssignForwardRequest");

const Export = z
  .object({
    id: z.string(),
    status: z.enum(["queued", "building", "done", "failed"]),
    studyInstanceUid: z.string().optional(),
    project: z.string(),
    participant: z.string(),
    event: z.string().nullable().optional(),
    layout: z.enum(LAYOUTS),
    source: z.enum(["transfer", "received"]).optional(),
    requestedBy: z.string().optional(),
    createdAt: z.string().datetime(),
    updatedAt: z.string().datetime().optional(),
    size: z.number().int().nullable().optional(),
    sha256: z.string().nullable().optional().describe("SHA-256 (hex) of the archive"),
    fileName: z.string().optional(),
    download: z.string().nullable().describe("Download URL once done"),
    files: z
      .object({ dicom: z.number().int(), nifti: z.number().int(), total: z.number().int() })
      .partial()
      .optional(),
    error: z.string().optional(),
  })
  .openapi("Export");

const NoAssignDestination = z
  .object({ name: z.string(), aeTitle: z.string() })
  .openapi("NoAssignDestination");

const NoAssignForwardResult = z
  .object({
    destination: z.string(),
    peer: z.string().optional().describe("CALLED_AE@host:port"),
    files: z.number().int(),
    series: z.number().int().optional(),
    sent: z.number().int(),
    warnings: z.number().int().optional(),
    failed: z.number().int(),
    elapsedMs: z.number().int().optional(),
  })
  .openapi("NoAssignForwardResult");

const zip = (description: string): Reply => ({
  description,
  schema: z.string().openapi({ format: "binary" }),
  type: "application/zip",
});

const noProject = { 404: error("No such project for this user") };

function exportView(r: ExportRecord) {
  return {
    id: r.id,
    status: r.status,
    studyInstanceUid: r.studyInstanceUid,
    project: r.project,
    participant: r.participant,
    event: r.event ?? null,
    layout: r.layout,
    source: r.source,
    requestedBy: r.requestedBy,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    size: r.size ?? null,
    sha256: r.sha256 ?? null,
    fileName: r.downloadName,
    download: r.status === "done" ? `/api/exports/${r.id}/download` : null,
    ...(r.manifest ? { files: r.manifest.files } : {}),
    ...(r.error ? { error: r.error } : {}),
  };
}

/** GET/POST /api/exports, GET /api/exports/:id/download and the NoAssign routes. */
export function registerExportRoutes(api: ApiRoutes, deps: ExportRouteDeps): void {
  const { cfg, redis } = deps;
  const paths = new SitePaths(cfg.dataDir);
  const store = new ExportStore(cfg);
  const transfers = new TransferRegistry(redis, cfg.redis.prefix);
  const exportQueue = createQueue(QUEUES.export, redis, cfg.redis.prefix);
  const invalid = (what: string) => (i: z.ZodIssue | undefined) => `send ${what}: ${i?.message ?? ""}`;

  async function visible(res: Response, id: string): Promise<ExportRecord> {
    const r = await store.get(id);
    if (!r || !deps.caller(res).canUse(r.project)) throw new HttpError(404, `no export ${id}`);
    return r;
  }

  const audit = (req: Request, res: Response, e: ExportAuditEntry) =>
    deps.audit ? deps.audit(req, res, e).catch(() => {}) : Promise.resolve();
  const auditOf = (
    action: ExportAuditEntry["action"],
    b: { studyInstanceUid: string; project: string; participant: string; event?: string | null | undefined },
    detail?: string,
  ): ExportAuditEntry => ({
    action,
    study: b.studyInstanceUid,
    project: b.project,
    participant: b.participant,
    ...(b.event ? { event: b.event } : {}),
    ...(detail ? { detail } : {}),
  });

  function sendZip(res: Response, r: ExportRecord) {
    res.setHeader("Content-Type", "application/zip");
    if (r.size !== undefined) res.setHeader("Content-Length", String(r.size));
    res.setHeader("Content-Disposition", `attachment; filename="${r.downloadName}"`);
    res.setHeader("Cache-Control", "no-store");
    const s = createReadStream(store.zipPath(r.id));
    s.on("error", () => res.destroy());
    s.pipe(res);
  }

  async function ask(res: Response, b: z.infer<typeof exportBody>, noAssign: boolean) {
    const c = deps.caller(res);
    if (!c.canUse(b.project)) throw new HttpError(404, `no project ${b.project}`);
    try {
      return await exportRequest(cfg, paths, transfers, {
        studyInstanceUid: b.studyInstanceUid,
        project: b.project,
        participant: b.participant,
        ...(b.event ? { event: b.event } : {}),
        layout: b.layout,
        requestedBy: c.user,
        noAssign,
      });
    } catch (e) {
      if (e instanceof InvalidRequestError) throw new HttpError(400, e.message);
      throw e;
    }
  }

  api.route(
    {
      method: "get",
      path: "/exports",
      summary: "Export archives of the caller's projects, newest first, with size and download link",
      responses: { 200: ok(z.array(Export)) },
    },
    async (_req, res) => {
      const c = deps.caller(res);
      res.json((await store.list()).filter((r) => c.canUse(r.project)).map(exportView));
    },
  );

  api.route(
    {
      method: "get",
      path: "/exports/:id/download",
      summary: "Download a finished export (ZIP)",
      params: z.object({ id: z.string().describe("Export id") }),
      responses: {
        200: zip("The archive"),
        404: error("No such export for this user"),
        409: error("The export is not finished"),
      },
    },
    async (_req, res, input) => {
      const r = await visible(res, input.params().id);
      if (r.status !== "done") throw new HttpError(409, `export ${r.id} is ${r.status}`);
      sendZip(res, r);
    },
  );

  api.route(
    {
      method: "post",
      path: "/exports",
      summary: "Queue an export: the transfer's pseudonymized files, else the study pseudonymized now",
      body: exportBody,
      invalid: invalid("{studyInstanceUid, project, participant, event?, layout?}"),
      responses: {
        202: ok(Export, "Export queued"),
        400: error("Invalid request (pattern, event)"),
        ...noProject,
      },
    },
    async (req, res, input) => {
      const b = input.body();
      const rec = await store.create(await ask(res, b, false));
      await exportQueue.add(QUEUES.export, { exportId: rec.id }, { jobId: `export-${rec.id}` });
      await audit(req, res, auditOf("export", b, `export ${rec.id} layout ${rec.layout}`));
      res.status(202).json(exportView(rec));
    },
  );

  // NoAssign: the received study pseudonymized with the project's profile, as a ZIP download.
  api.route(
    {
      method: "post",
      path: "/noassign",
      summary: "NoAssign: pseudonymize a received study with a project's profile and download it as a ZIP",
      description:
        "Nothing is sent to the research PACS. The archive (default layout) is also listed in GET /api/exports.",
      body: noAssignBody,
      invalid: invalid("{studyInstanceUid, project, participant, event?}"),
      responses: {
        200: zip("The pseudonymized archive"),
        400: error("Invalid request, or no images"),
        ...noProject,
      },
    },
    async (req, res, input) => {
      const b = input.body();
      const rec = await store.create(await ask(res, { ...b, layout: "DEFAULT" }, true));
      let done: ExportRecord;
      try {
        done = await buildExport({ cfg, paths, store }, rec.id);
      } catch (e) {
        if (e instanceof ExportError) throw new HttpError(400, e.message);
        throw e;
      }
      deps.logger.info(
        { exportId: done.id, user: rec.requestedBy, project: rec.project },
        "web: noassign export",
      );
      await audit(req, res, auditOf("noassign-download", b, `export ${done.id}`));
      sendZip(res, done);
    },
  );

  // NoAssign destinations (names only: never the research PACS).
  api.route(
    {
      method: "get",
      path: "/noassign/destinations",
      summary: "DICOM destinations NoAssign may forward to (configuration noAssign.destinations)",
      responses: { 200: ok(z.array(NoAssignDestination)) },
    },
    (_req, res) => {
      res.json(cfg.noAssign.destinations.map((d) => ({ name: d.name, aeTitle: d.aeTitle })));
    },
  );

  // NoAssign forward: pseudonymize the received study now and send it to a configured DICOM node.
  api.route(
    {
      method: "post",
      path: "/noassign/forward",
      summary: "NoAssign: pseudonymize a received study now and send it to a configured DICOM destination",
      description:
        "One association to the named destination (never the research PACS); the temporary files are removed afterwards.",
      body: forwardBody,
      invalid: invalid("{studyInstanceUid, project, participant, event?, destination}"),
      responses: {
        200: ok(NoAssignForwardResult, "Sent (see the counts)"),
        400: error("Invalid request, unknown destination, or no images"),
        ...noProject,
        502: error("The destination refused the association or failed"),
      },
    },
    async (req, res, input) => {
      const b = input.body();
      if (!noAssignDestination(cfg, b.destination))
        throw new HttpError(400, `no destination ${b.destination}`);
      // Grants and the participant/event rules, exactly as for exports.
      await ask(res, { ...b, layout: "DEFAULT" }, true);
      let result;
      try {
        result = await forwardNoAssign(
          { cfg, paths, logger: deps.logger },
          {
            studyInstanceUid: b.studyInstanceUid,
            project: b.project,
            participant: b.participant,
            ...(b.event ? { event: b.event } : {}),
            destination: b.destination,
          },
        );
      } catch (e) {
        if (e instanceof ExportError) throw new HttpError(400, e.message);
        if (e instanceof RetryableSendError || e instanceof PermanentSendError)
          throw new HttpError(502, `sending to ${b.destination} failed: ${e.message}`);
        throw e;
      }
      deps.logger.info(
        { user: deps.caller(res).user, project: b.project, destination: b.destination, sent: result.sent },
        "web: noassign forward",
      );
      await audit(
        req,
        res,
        auditOf(
          "noassign-forward",
          b,
          `to ${result.destination}: ${result.sent}/${result.files} sent, ${result.failed} failed`,
        ),
      );
      res.json(result);
    },
  );
}
