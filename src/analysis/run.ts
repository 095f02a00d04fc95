import { promises as fs } from "node:fs";
import path from "node:path";
import { UnrecoverableError, type Job } from "bullmq";
import { deidSettings, type FionaConfig } from "../config/schema.js";
import { readHeaderFile } from "../dicom/header.js";
import { sendFiles } from "../dimse/index.js";
import type { Logger } from "../log.js";
import type { AnalysisJob } from "../queues/index.js";
import { safePathComponent, type SitePaths } from "../paths.js";
import { projectOf, siteSecret, storeDestinationFor } from "../transfer/stage.js";
import { clientFor, redcapToken } from "../redcap/client.js";
import { deidentifyFiles, type DeidFilesResult, type DeidFilesTask } from "../transfer/deid-files.js";
import type { AnalysisJobConfig, RuntimeName } from "./config.js";
import {
  checkOutput,
  OutputJsonError,
  readOutputJson,
  toImportRows,
  type InputUids,
  type ResultRow,
} from "./results.js";
import { buildInvocation, jobFolder, runInvocation, type JobFolder } from "./runtime.js";
import { selectSeries, studySeries } from "./select.js";

export type { AnalysisJob };

export interface AnalysisDeps {
  cfg: FionaConfig;
  paths: SitePaths;
  log: Logger;
  /** De-identification worker threads; without one, files are pseudonymized on the main thread. */
  pool?: { run(task: DeidFilesTask): Promise<DeidFilesResult> };
}

/** One entry of descr.json (the ror series descriptor); pseudonymized values only. */
export interface SeriesDescriptor {
  NameFromSelect: string;
  StudyInstanceUID: string;
  SeriesInstanceUID: string;
  SeriesDescription: string;
  NumFiles: number;
  Modality: string;
  PatientID: string;
  PatientName: string;
  SequenceName: string;
  StudyDate: string;
  StudyTime: string;
  SeriesTime: string;
  SeriesNumber: string;
  /** The event name, as the original. */
  ReferringPhysician: string;
  ClassifyTypes: string[];
  /** Folder of the series' files, relative to the job folder. */
  path: string;
}

export interface AnalysisResult {
  job: string;
  jobDir: string;
  runtime: RuntimeName;
  inputSeries: number;
  inputFiles: number;
  exitCode: number | null;
  durationMs: number;
  /** Output DICOM series sent to the research PACS (pseudonymized UIDs). */
  outputSeries: string[];
  sent: number;
  notDicom: number;
  /** output.json rows, with where they went. */
  rows: ResultRow[];
  redcap: { written: boolean; records?: number; reason?: string };
}

function jobDefinition(cfg: FionaConfig, name: string): AnalysisJobConfig {
  const def = cfg.analysis.jobs.find((j) => j.name === name);
  if (!def) throw new UnrecoverableError(`analysis job ${name} is not configured (analysis.jobs)`);
  return def;
}

function analysisWorkDir(cfg: FionaConfig, paths: SitePaths): string {
  return cfg.analysis.workDir ?? path.join(paths.site, "analysis");
}

/** Pseudonymize the selected series into input/series-NN and write descr.json. */
async function prepareFolder(
  job: Job<AnalysisJob>,
  def: AnalysisJobConfig,
  folder: JobFolder,
  deps: AnalysisDeps,
): Promise<{ uids: InputUids; series: number; files: number }> {
  const d = job.data;
  const all = await studySeries(deps.paths, d.studyInstanceUid);
  if (all.length === 0) throw new UnrecoverableError(`no images of study ${d.studyInstanceUid} are on disk`);
  const selected = selectSeries(def, all);
  if (selected.length === 0)
    throw new UnrecoverableError(`analysis job ${def.name}: no series of this study matches its selection`);
  const project = projectOf(deps.cfg, d.project);
  const ctxBase = {
    project: deidSettings(project),
    participant: d.participant,
    ...(d.event !== undefined ? { event: d.event } : {}),
    secret: siteSecret(deps.cfg),
  };
  await fs.rm(folder.dir, { recursive: true, force: true });
  await fs.mkdir(folder.input, { recursive: true });
  await fs.mkdir(folder.output, { recursive: true });
  const uids: InputUids = { studies: new Set(), series: new Set(), instances: new Set() };
  const descr: SeriesDescriptor[] = [];
  let files = 0;
  for (const [i, s] of selected.entries()) {
    const rel = `input/series-${String(i + 1).padStart(3, "0")}`;
    const outDir = path.join(folder.dir, rel);
    const dir = deps.paths.rawSeriesDir(d.studyInstanceUid, s.seriesInstanceUid);
    const raw = (await fs.readdir(dir)).sort().map((f) => path.join(dir, f));
    const task: DeidFilesTask = {
      files: raw,
      outDir,
      ctx: { ...ctxBase, classifyTypes: s.summary.ClassifyType ?? [] },
    };
    const r = deps.pool ? await deps.pool.run(task) : deidentifyFiles(task);
    const names = (await fs.readdir(outDir)).filter((f) => f.endsWith(".dcm")).sort();
    if (names.length === 0) {
      await fs.rm(outDir, { recursive: true, force: true });
      await job.log(
        `series ${i + 1}: nothing left after de-identification (${r.refused[0]?.reason ?? "dropped"})`,
      );
      continue;
    }
    for (const n of names) uids.instances.add(n.slice(0, -".dcm".length));
    const h = await readHeaderFile(path.join(outDir, names[0]!));
    const v = (k: string) => h.string(k) ?? "";
    uids.studies.add(v("StudyInstanceUID"));
    uids.series.add(v("SeriesInstanceUID"));
    files += names.length;
    descr.push({
      NameFromSelect: def.name,
      StudyInstanceUID: v("StudyInstanceUID"),
      SeriesInstanceUID: v("SeriesInstanceUID"),
      SeriesDescription: v("SeriesDescription"),
      NumFiles: names.length,
      Modality: v("Modality"),
      PatientID: v("PatientID"),
      PatientName: v("PatientName"),
      SequenceName: v("SequenceName"),
      StudyDate: v("StudyDate"),
      StudyTime: v("StudyTime"),
      SeriesTime: v("SeriesTime"),
      SeriesNumber: v("SeriesNumber"),
      ReferringPhysician: d.event ?? v("ReferringPhysicianName"),
      ClassifyTypes: s.summary.ClassifyType ?? [],
      path: rel,
    });
  }
  if (descr.length === 0)
    throw new UnrecoverableError(
      `analysis job ${def.name}: every selected image was dropped or refused by de-identification`,
    );
  await fs.writeFile(folder.descr, JSON.stringify(descr, null, 2));
  return { uids, series: descr.length, files };
}

/** Copy algorithm output into the BullMQ job log, at most maxLines lines. */
function jobLogger(job: Job, maxLines: number) {
  let lines = 0;
  let chain: Promise<unknown> = Promise.resolve();
  const push = (text: string) => {
    chain = chain.then(() => job.log(text)).catch(() => undefined);
  };
  return {
    line(stream: "stdout" | "stderr", text: string) {
      lines++;
      if (lines <= maxLines) push(`[${stream}] ${text}`);
      else if (lines === maxLines + 1)
        push(`… further output only in the job folder's log/ (analysis.maxLogLines)`);
    },
    note: push,
    flush: () => chain,
  };
}

/**
 * Run one analysis job: prepare the job folder (pseudonymized input, descr.json, empty output), run the
 * algorithm through its runtime with a time limit, check the output DICOM, send it to the research PACS
 * and write output.json rows to the project's REDCap.
 */
export async function processAnalysis(
  job: Job<AnalysisJob>,
  deps: AnalysisDeps,
  signal?: AbortSignal,
): Promise<AnalysisResult> {
  const d = job.data;
  const def = jobDefinition(deps.cfg, d.job);
  const runtime = def.runtime ?? deps.cfg.analysis.runtime;
  const runId = safePathComponent(`${job.id ?? "x"}-${job.attemptsMade}`).replace(/[^A-Za-z0-9_.-]/g, "_");
  const folder = jobFolder(
    path.join(analysisWorkDir(deps.cfg, deps.paths), safePathComponent(def.name), runId),
  );
  const out = jobLogger(job, deps.cfg.analysis.maxLogLines);

  const input = await prepareFolder(job, def, folder, deps);
  out.note(`job folder ${folder.dir}: ${input.series} series, ${input.files} files (pseudonymized)`);

  const inv = buildInvocation(runtime, def, folder, runId, {
    ...(deps.cfg.analysis.engineBinary ? { engineBinary: deps.cfg.analysis.engineBinary } : {}),
  });
  out.note(`${runtime}: ${inv.argv.join(" ")}`);
  const run = await runInvocation(inv, {
    timeoutMs: def.limits.timeoutSeconds * 1000,
    ...(signal ? { signal } : {}),
    logDir: folder.logDir,
    onLine: (s, l) => out.line(s, l),
  });
  await out.flush();
  if (run.timedOut)
    throw new UnrecoverableError(
      `analysis job ${def.name} exceeded its time limit of ${def.limits.timeoutSeconds} s and was killed`,
    );
  if (run.cancelled) throw new UnrecoverableError(`analysis job ${def.name} was cancelled`);
  if (run.exitCode !== 0)
    throw new UnrecoverableError(
      `analysis job ${def.name} failed: ${run.signal ? `killed by ${run.signal}` : `exit code ${run.exitCode}`} (see the job log)`,
    );

  const check = await checkOutput(folder.output, input.uids);
  if (check.problems.length) {
    for (const p of check.problems.slice(0, 50)) await job.log(`rejected: ${p}`);
    throw new UnrecoverableError(
      `analysis job ${def.name}: output rejected, nothing sent (${check.problems.length} problem(s)): ${check.problems
        .slice(0, 3)
        .join("; ")}`,
    );
  }
  let rows: ResultRow[];
  try {
    rows = await readOutputJson(folder.output);
  } catch (e) {
    if (e instanceof OutputJsonError) throw new UnrecoverableError(`analysis job ${def.name}: ${e.message}`);
    throw e;
  }

  let sent = 0;
  const outputSeries = [...new Set(check.dicom.map((f) => f.seriesInstanceUid))];
  if (check.dicom.length && def.results.sendDicom) {
    const destProject = def.results.project ?? d.project;
    const report = await sendFiles(
      storeDestinationFor(deps.cfg, destProject, deps.log),
      check.dicom.map((f) => f.file),
    );
    sent = report.succeeded + report.warnings;
    await job.log(`sent ${sent} of ${check.dicom.length} result files to ${report.destination}`);
    if (sent < check.dicom.length) {
      const first = report.files.find((f) => f.outcome.kind !== "success" && f.outcome.kind !== "warning");
      throw new Error(
        `analysis job ${def.name}: ${check.dicom.length - sent} result file(s) not accepted by ${report.destination}` +
          (first?.outcome.reason ? `: ${first.outcome.reason}` : ""),
      );
    }
  }

  const redcap = await writeRows(deps, def, d.project, rows);
  if (rows.length)
    await job.log(
      redcap.written
        ? `${rows.length} output.json row(s) written to REDCap`
        : `output.json rows kept in the job result: ${redcap.reason}`,
    );
  if (deps.cfg.analysis.removeJobFolder) await fs.rm(folder.dir, { recursive: true, force: true });
  return {
    job: def.name,
    jobDir: folder.dir,
    runtime,
    inputSeries: input.series,
    inputFiles: input.files,
    exitCode: run.exitCode,
    durationMs: run.durationMs,
    outputSeries,
    sent,
    notDicom: check.other.length,
    rows,
    redcap,
  };
}

async function writeRows(
  deps: AnalysisDeps,
  def: AnalysisJobConfig,
  project: string,
  rows: ResultRow[],
): Promise<AnalysisResult["redcap"]> {
  if (!rows.length) return { written: false, reason: "no output.json rows" };
  if (!def.results.redcap) return { written: false, reason: "results.redcap is off for this job" };
  const rc = deps.cfg.redcap;
  const name = `project:${project}`;
  if (!rc || !redcapToken(rc, name))
    return { written: false, reason: `no REDCap configured for project ${project}` };
  const records = await clientFor(rc, name).importRecords(toImportRows(rows, def.results.recordIdField));
  return { written: true, records };
}
