/**
 * Web upload of whole-slide images under /api/wsi (mounted behind the API's authentication and CSRF
 * checks): create an upload, PUT it in chunks at the server's offset (restartable after a network
 * error: GET the offset, resume there), and the complete slide is queued for conversion as by
 * `fiona attach`.
 */
import { readdir } from "node:fs/promises";
import express, { type NextFunction, type Request, type Response, type Router } from "express";
import type { Redis } from "ioredis";
import { z } from "zod";
import type { FionaConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import { InvalidRequestError } from "../transfer/request.js";
import { queueConversion, validateAttachTarget } from "./cli.js";
import { MetadataError, parseMetadata } from "./metadata.js";
import { UploadError, slideExtension, uploadStore, type UploadRecord } from "./uploads.js";

export interface WsiWebDeps {
  cfg: FionaConfig;
  /** Producer connection the conversion job is queued on. */
  redis: Redis;
  logger: Logger;
  /** Whether the caller of this request may use the project. */
  canUse: (res: Response, project: string) => boolean;
}

/** Uploads listed by GET /api/wsi/uploads (newest first). */
const MAX_LISTED = 100;

const createBody = z
  .object({
    project: z.string().min(1).max(64),
    participant: z.string().min(1).max(64),
    event: z.string().max(64).nullish(),
    extension: z.string().min(1).max(8),
    size: z.number().int().positive(),
    metadata: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

class BadField extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** What the API shows of an upload: no file name (the store never keeps one). */
function view(record: UploadRecord, offset: number) {
  return {
    id: record.id,
    project: record.project,
    participant: record.participant,
    ...(record.event !== undefined ? { event: record.event } : {}),
    state: record.state,
    offset,
    size: record.size,
    ...(record.error !== undefined ? { error: record.error } : {}),
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
}

export function wsiUploadRouter(deps: WsiWebDeps): Router {
  const { cfg, redis, logger } = deps;
  const store = uploadStore(cfg);
  const router = express.Router();

  async function visible(req: Request, res: Response): Promise<UploadRecord> {
    const id = String(req.params.id);
    const record = await store.get(id);
    if (!record || !deps.canUse(res, record.project)) throw new UploadError("unknown upload", 404);
    return record;
  }

  const offsetOf = async (r: UploadRecord) => (r.state === "receiving" ? store.offset(r.id) : r.size);

  router.post("/uploads", async (req, res) => {
    const parsed = createBody.safeParse(req.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new BadField(400, `${issue?.path.join(".") || "body"}: ${issue?.message ?? "invalid"}`);
    }
    const b = parsed.data;
    if (!deps.canUse(res, b.project)) throw new BadField(403, `project ${b.project} is not granted to you`);
    const event = b.event ? b.event : undefined;
    try {
      validateAttachTarget(cfg, { project: b.project, participant: b.participant, event }, "web");
    } catch (e) {
      if (e instanceof InvalidRequestError) throw new BadField(400, e.message);
      throw e;
    }
    let extension: string;
    try {
      extension = slideExtension(b.extension);
    } catch (e) {
      throw new BadField(400, `extension: ${(e as Error).message}`);
    }
    const metadata = parseMetadata(b.metadata ?? {});
    const record = await store.create({
      project: b.project,
      participant: b.participant,
      ...(event !== undefined ? { event } : {}),
      metadata,
      extension,
      size: b.size,
    });
    logger.info(
      { uploadId: record.id, project: record.project, size: record.size },
      "wsi: web upload created",
    );
    res.status(201).json({ id: record.id, offset: 0 });
  });

  router.get("/uploads", async (_req, res) => {
    const ids = await readdir(store.root).catch(() => [] as string[]);
    const records: UploadRecord[] = [];
    for (const id of ids) {
      const r = /^[0-9a-f]{32}$/.test(id) ? await store.get(id).catch(() => undefined) : undefined;
      if (r && deps.canUse(res, r.project)) records.push(r);
    }
    records.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    const listed = records.slice(0, MAX_LISTED);
    res.json(await Promise.all(listed.map(async (r) => view(r, await offsetOf(r)))));
  });

  router.get("/uploads/:id", async (req, res) => {
    const record = await visible(req, res);
    res.json(view(record, await offsetOf(record)));
  });

  router.put("/uploads/:id", async (req, res) => {
    const record = await visible(req, res);
    const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    if (type !== "application/octet-stream") {
      throw new BadField(415, "send the chunk as Content-Type: application/octet-stream");
    }
    const offset = Number(req.query.offset);
    if (!Number.isSafeInteger(offset) || offset < 0)
      throw new BadField(400, "offset: a byte offset is required");
    let updated: UploadRecord;
    try {
      updated = await store.append(record.id, offset, req);
    } catch (e) {
      if (e instanceof UploadError && e.status === 409) {
        res
          .status(409)
          .json({ error: e.message, offset: await offsetOf((await store.get(record.id)) ?? record) });
        return;
      }
      throw e;
    }
    if (updated.state === "complete") {
      await queueConversion(cfg, redis, updated.id);
      logger.info(
        { uploadId: updated.id, project: updated.project },
        "wsi: web upload complete, conversion queued",
      );
    }
    res.json(view(updated, await offsetOf(updated)));
  });

  router.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (req.socket.destroyed) {
      // The client dropped a chunk mid-way; what arrived stays on disk and it resumes from GET's offset.
      logger.warn({ uploadId: req.params.id }, "wsi: upload chunk interrupted");
      return;
    }
    if (res.headersSent) return next(err);
    if (err instanceof BadField || err instanceof UploadError) {
      res.status(err.status).json({ error: err.message });
    } else if (err instanceof MetadataError) {
      res.status(400).json({ error: `metadata.${err.message}` });
    } else next(err);
  });

  return router;
}
