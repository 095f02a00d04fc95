import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import type { FionaConfig } from "../config/schema.js";
import { readJsonIfExists, writeFileAtomic } from "../fs/atomic.js";

export const LAYOUTS = ["DEFAULT", "PURE", "NIFTI"] as const;
export type ExportLayout = (typeof LAYOUTS)[number];

export type ExportStatus = "queued" | "building" | "done" | "failed";

/** What to export. Identifiers only (the participant is a pseudonym), so it may travel as job data. */
export interface ExportRequest {
  /** The original StudyInstanceUID (as in raw/ and the incoming list). */
  studyInstanceUid: string;
  project: string;
  participant: string;
  event?: string;
  layout: ExportLayout;
  /**
   * "transfer": the pseudonymized files of that transfer request (outbox/<requestId>/);
   * "received": the study pseudonymized on the fly with the project's profile (NoAssign).
   */
  source: "transfer" | "received";
  requestId?: string;
  requestedBy: string;
}

export interface ExportManifest {
  date: string;
  project: string;
  participant: string;
  event: string | null;
  layout: ExportLayout;
  source: "transfer" | "received";
  pseudoStudyInstanceUid: string | null;
  series: number;
  files: { dicom: number; nifti: number; total: number };
  tool: { name: "fiona"; version: string; dcm2niix?: string };
}

export interface ExportRecord extends ExportRequest {
  id: string;
  status: ExportStatus;
  createdAt: string;
  updatedAt: string;
  /** File name of the archive inside the exports folder. */
  file: string;
  /** Name offered to downloads. */
  downloadName: string;
  size?: number;
  /** SHA-256 (hex) of the archive. */
  sha256?: string;
  manifest?: ExportManifest;
  error?: string;
}

export const exportsDir = (cfg: FionaConfig) => cfg.exports.dir ?? path.join(cfg.dataDir, "exports");
export const exportsTempDir = (cfg: FionaConfig) => path.join(exportsDir(cfg), ".tmp");

const ID = /^[0-9a-f]{24}$/;
const isExportId = (id: string) => ID.test(id);

const filePart = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 64);

/** Export records and archives in the exports folder: <id>.json next to <id>.zip. */
export class ExportStore {
  readonly dir: string;
  constructor(cfg: FionaConfig) {
    this.dir = exportsDir(cfg);
  }
  recordPath(id: string): string {
    if (!isExportId(id)) throw new Error("not an export id");
    return path.join(this.dir, `${id}.json`);
  }
  zipPath(id: string): string {
    if (!isExportId(id)) throw new Error("not an export id");
    return path.join(this.dir, `${id}.zip`);
  }

  async create(r: ExportRequest, now = new Date()): Promise<ExportRecord> {
    const id = randomBytes(12).toString("hex");
    const stamp = now.toISOString().replace(/[-:]/g, "").slice(0, 15);
    const rec: ExportRecord = {
      ...r,
      id,
      status: "queued",
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
      file: `${id}.zip`,
      downloadName: `${[r.project, r.participant, r.event ?? "", r.layout, stamp].filter(Boolean).map(filePart).join("_")}.zip`,
    };
    await fs.mkdir(this.dir, { recursive: true });
    await this.save(rec);
    return rec;
  }

  async save(rec: ExportRecord): Promise<void> {
    await writeFileAtomic(this.recordPath(rec.id), JSON.stringify(rec, null, 2));
  }

  async update(id: string, patch: Partial<ExportRecord>): Promise<ExportRecord> {
    const rec = await this.get(id);
    if (!rec) throw new Error(`export ${id} not found`);
    const next = { ...rec, ...patch, updatedAt: new Date().toISOString() };
    await this.save(next);
    return next;
  }

  async get(id: string): Promise<ExportRecord | undefined> {
    if (!isExportId(id)) return undefined;
    return readJsonIfExists<ExportRecord>(this.recordPath(id));
  }

  /** Every export, newest first. */
  async list(): Promise<ExportRecord[]> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    const recs = await Promise.all(
      names
        .filter((n) => n.endsWith(".json") && isExportId(n.slice(0, -5)))
        .map((n) => this.get(n.slice(0, -5)).catch(() => undefined)),
    );
    return recs.filter((r): r is ExportRecord => !!r).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  async remove(id: string): Promise<void> {
    await fs.rm(this.zipPath(id), { force: true });
    await fs.rm(this.recordPath(id), { force: true });
  }
}
