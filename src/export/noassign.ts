import { promises as fs } from "node:fs";
import path from "node:path";
import { scuDestination } from "../dimse/connect.js";
import type { FionaConfig } from "../config/schema.js";
import { tempName } from "../fs/temp-name.js";
import { sendFiles, type SendReport } from "../dimse/index.js";
import type { Logger } from "../log.js";
import type { SitePaths } from "../paths.js";
import type { DeidFilesResult, DeidFilesTask } from "../transfer/deid-files.js";
import { ExportError, sourceSeries } from "./build.js";
import type { NoAssignDestination } from "./config.js";
import { exportsTempDir } from "./store.js";

export interface NoAssignForwardAsk {
  studyInstanceUid: string;
  project: string;
  participant: string;
  event?: string;
  /** Name of one of cfg.noAssign.destinations. */
  destination: string;
}

export interface NoAssignForwardResult {
  destination: string;
  /** "CALLED_AE@host:port". */
  peer: string;
  /** Pseudonymized instances offered. */
  files: number;
  series: number;
  sent: number;
  warnings: number;
  failed: number;
  elapsedMs: number;
}

export function noAssignDestination(cfg: FionaConfig, name: string): NoAssignDestination | undefined {
  return cfg.noAssign.destinations.find((d) => d.name === name);
}

/**
 * NoAssign forward: pseudonymize the received study with the project's profile into a temporary
 * folder (under the exports temp folder, removed afterwards) and send it to one configured
 * destination with sendFiles (one association). Nothing reaches the research PACS.
 * Throws ExportError for permanent problems (no images, unknown project or destination) and the
 * DIMSE errors of sendFiles for association failures.
 */
export async function forwardNoAssign(
  deps: {
    cfg: FionaConfig;
    paths: SitePaths;
    logger?: Logger;
    deid?: (task: DeidFilesTask) => Promise<DeidFilesResult>;
  },
  ask: NoAssignForwardAsk,
): Promise<NoAssignForwardResult> {
  const dest = noAssignDestination(deps.cfg, ask.destination);
  if (!dest) throw new ExportError(`no NoAssign destination ${ask.destination}`);
  const tmp = path.join(exportsTempDir(deps.cfg), tempName("noassign"));
  await fs.mkdir(tmp, { recursive: true });
  try {
    const series = await sourceSeries(
      deps,
      {
        source: "received",
        studyInstanceUid: ask.studyInstanceUid,
        project: ask.project,
        participant: ask.participant,
        ...(ask.event ? { event: ask.event } : {}),
      },
      tmp,
    );
    const files = series.flatMap((s) => s.files);
    if (!files.length) throw new ExportError("no instance of this study survived pseudonymization");
    const report: SendReport = await sendFiles(
      {
        ...scuDestination(dest, deps.cfg.aeTitle),
        timeoutMs: deps.cfg.transfer.timeoutMs,
        ...(deps.logger ? { logger: deps.logger } : {}),
      },
      files,
    );
    return {
      destination: dest.name,
      peer: report.destination,
      files: files.length,
      series: series.length,
      sent: report.succeeded + report.warnings,
      warnings: report.warnings,
      failed: report.failed,
      elapsedMs: Math.round(report.elapsedMs),
    };
  } finally {
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => {});
  }
}
