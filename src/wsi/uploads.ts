/** The slide upload store: `<uploadDir>/<id>/{upload.part,slide.<ext>,upload.json}`. */
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { FionaConfig } from "../config/schema.js";
import { readJsonIfExists, writeFileAtomic } from "../fs/atomic.js";
import { SitePaths } from "../paths.js";
import type { SlideMetadata } from "./metadata.js";

export type UploadState = "receiving" | "complete" | "converting" | "sent" | "failed";

export interface UploadRecord {
  id: string;
  project: string;
  participant: string;
  event?: string;
  metadata: SlideMetadata;
  extension: string;
  size: number;
  state: UploadState;
  error?: string;
  /** The transfer request the converted series was handed to. */
  requestId?: string;
  createdAt: string;
  /** When the last byte arrived: the slide's StudyDate/StudyTime. */
  completedAt?: string;
  updatedAt: string;
}

const SLIDE_EXTENSIONS = [".svs", ".tif", ".tiff"] as const;
const ID = /^[0-9a-f]{32}$/;

export class UploadError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The validated lower-case extension of a client file name (the name itself is never used). */
export function slideExtension(fileName: string): string {
  const ext = /\.[A-Za-z]{2,5}$/.exec(fileName)?.[0].toLowerCase() ?? "";
  if (!(SLIDE_EXTENSIONS as readonly string[]).includes(ext)) {
    throw new UploadError(`file type not accepted (use ${SLIDE_EXTENSIONS.join(" ")})`, 415);
  }
  return ext;
}

/** The site's upload store (`wsi.uploadDir`, default `<dataDir>/site/wsi-uploads`). */
export function uploadStore(cfg: FionaConfig): UploadStore {
  const root = cfg.wsi.uploadDir || join(new SitePaths(cfg.dataDir).site, "wsi-uploads");
  return new UploadStore(root, cfg.wsi.maxUploadBytes);
}

export class UploadStore {
  constructor(
    readonly root: string,
    readonly maxBytes: number,
  ) {}

  dir(id: string): string {
    if (!ID.test(id)) throw new UploadError("invalid upload id", 400);
    return join(this.root, id);
  }

  partPath(id: string): string {
    return join(this.dir(id), "upload.part");
  }

  slidePath(record: UploadRecord): string {
    return join(this.dir(record.id), `slide${record.extension}`);
  }

  async create(
    fields: Omit<UploadRecord, "id" | "state" | "createdAt" | "updatedAt">,
  ): Promise<UploadRecord> {
    if (fields.size > this.maxBytes) throw new UploadError("file larger than the upload limit", 413);
    const now = new Date().toISOString();
    const record: UploadRecord = {
      ...fields,
      id: randomBytes(16).toString("hex"),
      state: "receiving",
      createdAt: now,
      updatedAt: now,
    };
    await mkdir(this.dir(record.id), { recursive: true });
    await this.save(record);
    return record;
  }

  async get(id: string): Promise<UploadRecord | undefined> {
    return readJsonIfExists<UploadRecord>(join(this.dir(id), "upload.json"));
  }

  async save(record: UploadRecord): Promise<void> {
    record.updatedAt = new Date().toISOString();
    await writeFileAtomic(join(this.dir(record.id), "upload.json"), JSON.stringify(record, null, 2));
  }

  /** Bytes of the part file on disk: where the client resumes. */
  async offset(id: string): Promise<number> {
    return stat(this.partPath(id)).then(
      (s) => s.size,
      () => 0,
    );
  }

  /**
   * Append a chunk streamed from `body` at `offset` (409 when it is not the bytes on disk). Completes
   * the upload (renames the part file to slide.<ext>) when the declared size is reached.
   */
  async append(id: string, offset: number, body: Readable): Promise<UploadRecord> {
    const record = await this.get(id);
    if (!record) throw new UploadError("unknown upload", 404);
    if (record.state !== "receiving") throw new UploadError(`upload is ${record.state}`, 409);
    const onDisk = await this.offset(id);
    if (offset !== onDisk) throw new UploadError(`offset mismatch: server has ${onDisk} bytes`, 409);
    let written = onDisk;
    body.on("data", (chunk: Buffer) => {
      written += chunk.length;
      if (written > record.size) body.destroy(new UploadError("more bytes than the declared size", 413));
    });
    await pipeline(body, createWriteStream(this.partPath(id), { flags: "a" }));
    if ((await this.offset(id)) === record.size) {
      await rename(this.partPath(id), this.slidePath(record));
      record.state = "complete";
      record.completedAt = new Date().toISOString();
      await this.save(record);
    }
    return record;
  }
}
