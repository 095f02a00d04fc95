import { execFile } from "node:child_process";
import { promises as fs, readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { deidSettings, type FionaConfig } from "../config/schema.js";
import { readHeaderFile } from "../dicom/header.js";
import { isPathSafeUid } from "../dicom/uid.js";
import { readJsonIfExists } from "../fs/atomic.js";
import { tempName } from "../fs/temp-name.js";
import type { SeriesSummary } from "../ingest/series-summary.js";
import { studySeries } from "../ingest/study-files.js";
import { safePathComponent, type SitePaths } from "../paths.js";
import { deidentifyFiles, type DeidFilesResult, type DeidFilesTask } from "../transfer/deid-files.js";
import { sha256File } from "../sftp/upload.js";
import { exportsTempDir, type ExportManifest, type ExportRecord, type ExportStore } from "./store.js";
import { writeZip, type ZipEntry } from "./zip.js";

const run = promisify(execFile);

/** Permanent: retrying does not help (no such study, no dcm2niix, unknown project…). */
export class ExportError extends Error {
  override name = "ExportError";
}

export interface BuildDeps {
  cfg: FionaConfig;
  paths: SitePaths;
  store: ExportStore;
  /** Pseudonymizes series for NoAssign exports (a DeidPool's run); the main thread by default. */
  deid?: (task: DeidFilesTask) => Promise<DeidFilesResult>;
  onProgress?: (percent: number) => void | Promise<void>;
  /** Tests: ZIP64 records on a small archive. */
  forceZip64?: boolean;
}

let toolVersion: string | undefined;
function fionaVersion(): string {
  try {
    toolVersion ??= (
      JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
    ).version;
  } catch {
    toolVersion = "unknown";
  }
  return toolVersion;
}

/** dcm2niix's version, or undefined when it is not installed. */
export async function dcm2niixVersion(exe = "dcm2niix"): Promise<string | undefined> {
  try {
    const r = await run(exe, ["-v"], { timeout: 10_000 }).catch((e: { stdout?: string; code?: unknown }) => {
      // dcm2niix -v exits non-zero on some versions but prints its version.
      if (typeof e.stdout === "string" && /dcm2nii/i.test(e.stdout)) return { stdout: e.stdout };
      throw e;
    });
    const m = /v\d+\.\d+\.\d+\S*/.exec(r.stdout);
    return m?.[0] ?? r.stdout.trim().split("\n").pop();
  } catch {
    return undefined;
  }
}

export interface SeriesFiles {
  dir: string;
  files: string[];
}

/** Pseudonymized series of the export: the transfer's outbox, or the study pseudonymized now. */
export async function sourceSeries(
  deps: Pick<BuildDeps, "cfg" | "paths" | "deid">,
  rec: Pick<ExportRecord, "source" | "requestId" | "project" | "studyInstanceUid" | "participant" | "event">,
  tmp: string,
): Promise<SeriesFiles[]> {
  const listDcm = async (dir: string) =>
    (await fs.readdir(dir))
      .filter((f) => f.endsWith(".dcm"))
      .sort()
      .map((f) => path.join(dir, f));
  if (rec.source === "transfer") {
    if (!rec.requestId || !/^[0-9a-f]{8,64}$/.test(rec.requestId))
      throw new ExportError("a transfer export needs the transfer request id");
    const base = path.join(deps.paths.outbox, rec.requestId);
    const dirs = await fs.readdir(base).catch(() => {
      throw new ExportError("the pseudonymized files of this transfer are no longer on disk");
    });
    const out: SeriesFiles[] = [];
    for (const s of dirs.filter((d) => isPathSafeUid(d)).sort()) {
      const files = await listDcm(path.join(base, s));
      if (files.length) out.push({ dir: path.join(base, s), files });
    }
    return out;
  }
  const project = deps.cfg.projects.find((p) => p.name === rec.project);
  if (!project) throw new ExportError(`project ${rec.project} is not configured`);
  if (!deps.cfg.secret) throw new ExportError("no site secret configured (secret, or FIONA_SECRET)");
  const series = await studySeries(deps.paths, rec.studyInstanceUid);
  if (!series.length) throw new ExportError("no images of this study are on disk");
  const deid = deps.deid ?? ((t: DeidFilesTask) => Promise.resolve(deidentifyFiles(t)));
  const out: SeriesFiles[] = [];
  for (const s of series) {
    const dir = deps.paths.rawSeriesDir(rec.studyInstanceUid, s);
    const files = (await fs.readdir(dir)).sort().map((f) => path.join(dir, f));
    const summary = await readJsonIfExists<SeriesSummary>(deps.paths.seriesJson(rec.studyInstanceUid, s));
    const outDir = path.join(tmp, "deid", s);
    await deid({
      files,
      outDir,
      ctx: {
        project: deidSettings(project),
        participant: rec.participant,
        ...(rec.event !== undefined ? { event: rec.event } : {}),
        secret: deps.cfg.secret,
        classifyTypes: summary?.ClassifyType ?? [],
      },
    });
    const written = await listDcm(outDir).catch(() => []);
    if (written.length) out.push({ dir: outDir, files: written });
  }
  return out;
}

interface Instance {
  file: string;
  institution: string;
  patientId: string;
  studyDate: string;
  studyTime: string;
  seriesNumber: number;
  seriesDescription: string;
  instanceNumber: number;
  pseudoStudy: string;
}

async function readInstance(file: string): Promise<Instance> {
  const h = await readHeaderFile(file);
  const num = (k: string) => {
    const n = Number(h.string(k));
    return Number.isFinite(n) ? n : 0;
  };
  return {
    file,
    institution: h.string("InstitutionName") ?? "",
    patientId: h.string("PatientID") ?? "",
    studyDate: h.string("StudyDate") ?? "",
    studyTime: (h.string("StudyTime") ?? "").split(".")[0] ?? "",
    seriesNumber: num("SeriesNumber"),
    seriesDescription: h.string("SeriesDescription") ?? "",
    instanceNumber: num("InstanceNumber"),
    pseudoStudy: h.string("StudyInstanceUID") ?? "",
  };
}

const fileSafe = (s: string, fallback: string) =>
  safePathComponent(s.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^_+|_+$/g, ""), fallback);

/** Archive names of one series' instances (sorted by InstanceNumber, numbered from 1). */
function layoutNames(
  layout: "DEFAULT" | "PURE",
  event: string | undefined,
  instances: Instance[],
): ZipEntry[] {
  const sorted = [...instances].sort(
    (a, b) => a.instanceNumber - b.instanceNumber || a.file.localeCompare(b.file),
  );
  return sorted.map((i, n) => {
    const series = `${String(i.seriesNumber).padStart(4, "0")}_${fileSafe(i.seriesDescription, "series")}`;
    const name =
      layout === "PURE"
        ? [
            fileSafe(i.institution, "unknown"),
            fileSafe(i.patientId, "unknown"),
            `${i.studyDate || "00000000"}_${i.studyTime || "000000"}${event ? `_${fileSafe(event, "event")}` : ""}`,
            series,
            `${n + 1}.dcm`,
          ].join("/")
        : [fileSafe(event ?? "", "noevent"), "DICOM", series, `${n + 1}.dcm`].join("/");
    return { name, file: i.file };
  });
}

const NIFTI_KEEP = /\.(nii\.gz|nii|json|bval|bvec)$/;

async function niftiEntries(deps: BuildDeps, rec: ExportRecord, series: SeriesFiles[], tmp: string) {
  const exe = deps.cfg.exports.dcm2niix;
  const version = await dcm2niixVersion(exe);
  if (!version)
    throw new ExportError(
      `the NIFTI layout needs dcm2niix, which is not installed (exports.dcm2niix: ${exe})`,
    );
  const entries: ZipEntry[] = [];
  for (const [i, s] of series.entries()) {
    const out = path.join(tmp, "nifti", String(i));
    await fs.mkdir(out, { recursive: true });
    try {
      await run(exe, ["-z", "y", "-b", "y", "-ba", "y", "-f", "%s_%d", "-o", out, s.dir], {
        timeout: 30 * 60_000,
        maxBuffer: 16 * 1024 * 1024,
      });
    } catch (e) {
      throw new Error(`dcm2niix failed: ${(e as Error).message.split("\n")[0] ?? ""}`);
    }
    for (const f of (await fs.readdir(out)).filter((f) => NIFTI_KEEP.test(f)).sort())
      entries.push({
        name: `${fileSafe(rec.event ?? "", "noevent")}/NIFTI/${f}`,
        file: path.join(out, f),
        store: f.endsWith(".gz"),
      });
  }
  return { entries, version };
}

/** Build the archive of an export record, updating the record; returns the finished record. */
export async function buildExport(deps: BuildDeps, id: string): Promise<ExportRecord> {
  const { store } = deps;
  let rec = await store.get(id);
  if (!rec) throw new ExportError(`export ${id} not found`);
  // A retry starts afresh: the error of an earlier attempt no longer describes the export.
  rec = await store.update(id, { status: "building", error: undefined });
  // Named after this process: the orphan sweep removes it if the process dies mid-build.
  const tmp = path.join(exportsTempDir(deps.cfg), tempName(id));
  await fs.mkdir(tmp, { recursive: true });
  try {
    const series = await sourceSeries(deps, rec, tmp);
    const dicomCount = series.reduce((a, s) => a + s.files.length, 0);
    if (dicomCount === 0) throw new ExportError("nothing to export: no pseudonymized images");
    await deps.onProgress?.(10);
    const instancesBySeries: Instance[][] = [];
    for (const s of series) instancesBySeries.push(await Promise.all(s.files.map(readInstance)));
    const pseudoStudy = instancesBySeries[0]?.[0]?.pseudoStudy || null;

    let entries: ZipEntry[] = [];
    let niftiCount = 0;
    let dcm2niix: string | undefined;
    if (rec.layout === "NIFTI") {
      const n = await niftiEntries(deps, rec, series, tmp);
      entries = n.entries;
      niftiCount = n.entries.length;
      dcm2niix = n.version;
      if (!niftiCount) throw new ExportError("dcm2niix converted nothing");
    } else {
      for (const inst of instancesBySeries) entries.push(...layoutNames(rec.layout, rec.event, inst));
    }
    await deps.onProgress?.(30);
    const manifest: ExportManifest = {
      date: new Date().toISOString(),
      project: rec.project,
      participant: rec.participant,
      event: rec.event ?? null,
      layout: rec.layout,
      source: rec.source,
      pseudoStudyInstanceUid: pseudoStudy,
      series: series.length,
      files: {
        dicom: rec.layout === "NIFTI" ? 0 : entries.length,
        nifti: niftiCount,
        total: entries.length,
      },
      tool: { name: "fiona", version: fionaVersion(), ...(dcm2niix ? { dcm2niix } : {}) },
    };
    entries.push({ name: "manifest.json", content: `${JSON.stringify(manifest, null, 2)}\n` });
    const total = entries.length;
    let last = 30;
    const size = await writeZip(store.zipPath(id), entries, {
      ...(deps.forceZip64 ? { forceZip64: true } : {}),
      onProgress: (done) => {
        const pct = 30 + Math.floor((69 * done) / total);
        if (pct >= last + 5) {
          last = pct;
          void deps.onProgress?.(pct);
        }
      },
    });
    const sha256 = await sha256File(store.zipPath(id));
    return await store.update(id, { status: "done", size, sha256, manifest });
  } catch (e) {
    await store.update(id, { status: "failed", error: (e as Error).message }).catch(() => {});
    throw e;
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}
