import { createReadStream } from "node:fs";
import type { Request, Response, Router } from "express";
import type { Redis } from "ioredis";
import { z } from "zod";
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

/** What src/web/api/index.ts lends the export routes: grants and its error type. */
export interface ExportRouteDeps {
  cfg: FionaConfig;
  redis: Redis;
  logger: Logger;
  /** The caller's name and whether it may use the project (admins: every project). */
  caller(res: Response): { user: string; canUse(project: string): boolean };
  httpError(status: number, message: string): Error;
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

const exportBody = z
  .object({
    studyInstanceUid: z.string().min(1).max(64),
    project: z.string().min(1).max(64),
    participant: z.string().min(1).max(64),
    event: z.string().max(64).nullish(),
    layout: z.enum(LAYOUTS).default("DEFAULT"),
  })
  .strict();

const noAssignBody = exportBody.omit({ layout: true });
const forwardBody = noAssignBody.extend({ destination: z.string().min(1).max(64) }).strict();

export function exportView(r: ExportRecord) {
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

/** GET/POST /api/exports, GET /api/exports/:id/download and POST /api/noassign. */
export function registerExportRoutes(router: Router, deps: ExportRouteDeps): void {
  const { cfg, redis } = deps;
  const paths = new SitePaths(cfg.dataDir);
  const store = new ExportStore(cfg);
  const transfers = new TransferRegistry(redis, cfg.redis.prefix);
  const exportQueue = createQueue(QUEUES.export, redis, cfg.redis.prefix);

  function parse<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, req: Request, what: string): T {
    const b = schema.safeParse(req.body);
    if (!b.success) throw deps.httpError(400, `send ${what}: ${b.error.issues[0]?.message ?? ""}`);
    return b.data;
  }

  async function visible(res: Response, id: string): Promise<ExportRecord> {
    const r = await store.get(id);
    if (!r || !deps.caller(res).canUse(r.project)) throw deps.httpError(404, `no export ${id}`);
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
    if (!c.canUse(b.project)) throw deps.httpError(404, `no project ${b.project}`);
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
      if (e instanceof InvalidRequestError) throw deps.httpError(400, e.message);
      throw e;
    }
  }

  router.get("/exports", async (_req, res) => {
    const c = deps.caller(res);
    res.json((await store.list()).filter((r) => c.canUse(r.project)).map(exportView));
  });

  router.get("/exports/:id/download", async (req, res) => {
    const r = await visible(res, String(req.params.id));
    if (r.status !== "done") throw deps.httpError(409, `export ${r.id} is ${r.status}`);
    sendZip(res, r);
  });

  router.post("/exports", async (req, res) => {
    const b = parse(exportBody, req, "{studyInstanceUid, project, participant, event?, layout?}");
    const rec = await store.create(await ask(res, b, false));
    await exportQueue.add(QUEUES.export, { exportId: rec.id }, { jobId: `export-${rec.id}` });
    await audit(req, res, auditOf("export", b, `export ${rec.id} layout ${rec.layout}`));
    res.status(202).json(exportView(rec));
  });

  // NoAssign: the quarantine study pseudonymized with the project's profile, as a ZIP download.
  router.post("/noassign", async (req, res) => {
    const b = parse(noAssignBody, req, "{studyInstanceUid, project, participant, event?}");
    const rec = await store.create(await ask(res, { ...b, layout: "DEFAULT" }, true));
    let done: ExportRecord;
    try {
      done = await buildExport({ cfg, paths, store }, rec.id);
    } catch (e) {
      if (e instanceof ExportError) throw deps.httpError(400, e.message);
      throw e;
    }
    deps.logger.info(
      { exportId: done.id, user: rec.requestedBy, project: rec.project },
      "web: noassign export",
    );
    await audit(req, res, auditOf("noassign-download", b, `export ${done.id}`));
    sendZip(res, done);
  });

  // NoAssign destinations (names only: never the research PACS).
  router.get("/noassign/destinations", (_req, res) => {
    res.json(cfg.noAssign.destinations.map((d) => ({ name: d.name, aeTitle: d.aeTitle })));
  });

  // NoAssign forward: pseudonymize the quarantine study now and send it to a configured DICOM node.
  router.post("/noassign/forward", async (req, res) => {
    const b = parse(forwardBody, req, "{studyInstanceUid, project, participant, event?, destination}");
    if (!noAssignDestination(cfg, b.destination))
      throw deps.httpError(400, `no destination ${b.destination}`);
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
      if (e instanceof ExportError) throw deps.httpError(400, e.message);
      if (e instanceof RetryableSendError || e instanceof PermanentSendError)
        throw deps.httpError(502, `sending to ${b.destination} failed: ${e.message}`);
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
  });
}
