/**
 * Web upload of whole-slide images under /api/wsi (mounted behind the API's authentication and CSRF
 * checks): create an upload, PUT it in chunks at the server's offset (restartable after a network
 * error: GET the offset, resume there), and the complete slide is queued for conversion as by
 * `fiona attach`.
 */
import { readdir } from "node:fs/promises";
import type { NextFunction, Request, Response } from "express";
import type { Redis } from "ioredis";
import type { FionaConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import { InvalidRequestError } from "../transfer/request.js";
import { HttpError } from "../web/api/http-error.js";
import { queryValue } from "../web/api/query.js";
import { error, ok } from "../web/api/replies.js";
import type { ApiRoutes } from "../web/api/routes.js";
import { z } from "../web/api/zod.js";
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
  .strict()
  .openapi("UploadRequest");

const idParam = z.object({ id: z.string().describe("Upload id") });

/** The byte offset of a chunk, read as `Number()` reads it. */
const chunkQuery = z.object({
  offset: queryValue((v) => Number(v), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)).describe(
    "Where the chunk starts: the upload's offset",
  ),
});

const Upload = z
  .object({
    id: z.string(),
    project: z.string(),
    participant: z.string(),
    event: z.string().optional(),
    state: z.enum(["receiving", "complete", "converting", "sent", "failed"]),
    offset: z.number().int().describe("Bytes received"),
    size: z.number().int(),
    error: z.string().optional(),
    createdAt: z.string().datetime(),
    updatedAt: z.string().datetime(),
  })
  .openapi("Upload");

const OffsetConflict = z.object({ error: z.string(), offset: z.number().int() });

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

/** The upload routes, on a registry scope of their own (mounted at /api/wsi). */
export function registerWsiUploadRoutes(api: ApiRoutes, deps: WsiWebDeps): void {
  const { cfg, redis, logger } = deps;
  const store = uploadStore(cfg);

  async function visible(id: string, res: Response): Promise<UploadRecord> {
    const record = await store.get(id);
    if (!record || !deps.canUse(res, record.project)) throw new UploadError("unknown upload", 404);
    return record;
  }

  const offsetOf = async (r: UploadRecord) => (r.state === "receiving" ? store.offset(r.id) : r.size);

  api.route(
    {
      method: "post",
      path: "/uploads",
      summary: "Create a whole-slide image upload (.svs .tif .tiff) for a project's participant",
      description:
        "Then PUT the file in chunks at the upload's offset; the complete slide is queued for conversion.",
      body: createBody,
      invalid: (i) => `${i?.path.join(".") || "body"}: ${i?.message ?? "invalid"}`,
      responses: {
        201: ok(z.object({ id: z.string(), offset: z.literal(0) }), "Upload created"),
        400: error("Invalid request (pattern, event, extension, metadata)"),
      },
    },
    async (_req, res, input) => {
      const b = input.body();
      if (!deps.canUse(res, b.project))
        throw new HttpError(403, `project ${b.project} is not granted to you`);
      const event = b.event ? b.event : undefined;
      try {
        validateAttachTarget(cfg, { project: b.project, participant: b.participant, event }, "web");
      } catch (e) {
        if (e instanceof InvalidRequestError) throw new HttpError(400, e.message);
        throw e;
      }
      let extension: string;
      try {
        extension = slideExtension(b.extension);
      } catch (e) {
        throw new HttpError(400, `extension: ${(e as Error).message}`);
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
    },
  );

  api.route(
    {
      method: "get",
      path: "/uploads",
      summary: `The caller's uploads, newest first (at most ${MAX_LISTED})`,
      responses: { 200: ok(z.array(Upload)) },
    },
    async (_req, res) => {
      const ids = await readdir(store.root).catch(() => [] as string[]);
      const records: UploadRecord[] = [];
      for (const id of ids) {
        const r = /^[0-9a-f]{32}$/.test(id) ? await store.get(id).catch(() => undefined) : undefined;
        if (r && deps.canUse(res, r.project)) records.push(r);
      }
      records.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      const listed = records.slice(0, MAX_LISTED);
      res.json(await Promise.all(listed.map(async (r) => view(r, await offsetOf(r)))));
    },
  );

  api.route(
    {
      method: "get",
      path: "/uploads/:id",
      summary: "One upload: its state and the offset to resume at",
      params: idParam,
      responses: { 200: ok(Upload), 404: error("Unknown upload, or not granted") },
    },
    async (_req, res, input) => {
      const record = await visible(input.params().id, res);
      res.json(view(record, await offsetOf(record)));
    },
  );

  api.route(
    {
      method: "put",
      path: "/uploads/:id",
      summary: "Append a chunk at the upload's offset; the last one queues the conversion",
      params: idParam,
      query: chunkQuery,
      streamed: "application/octet-stream",
      invalid: () => "offset: a byte offset is required",
      responses: {
        200: ok(Upload, "Chunk stored"),
        400: error("No byte offset"),
        404: error("Unknown upload, or not granted"),
        409: ok(OffsetConflict, "Not at the upload's offset, or the upload is complete"),
        415: error("Not application/octet-stream"),
      },
    },
    async (req, res, input) => {
      const record = await visible(input.params().id, res);
      const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
      if (type !== "application/octet-stream") {
        throw new HttpError(415, "send the chunk as Content-Type: application/octet-stream");
      }
      const { offset } = input.query();
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
    },
  );

  api.router.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (req.socket.destroyed) {
      // The client dropped a chunk mid-way; what arrived stays on disk and it resumes from GET's offset.
      logger.warn({ uploadId: req.params.id }, "wsi: upload chunk interrupted");
      return;
    }
    if (res.headersSent) return next(err);
    if (err instanceof UploadError) {
      res.status(err.status).json({ error: err.message });
    } else if (err instanceof MetadataError) {
      res.status(400).json({ error: `metadata.${err.message}` });
    } else next(err);
  });
}
