/**
 * What the transfer stages share: the project and secret a job names, where a project's studies go,
 * and the results the de-identify and send stages hand on (the transfer stage records them).
 */
import { UnrecoverableError } from "bullmq";
import type { Destination, FionaConfig, ProjectConfig } from "../config/schema.js";
import { scuDestination } from "../dimse/connect.js";
import type { StoreDestination } from "../dimse/index.js";
import type { Logger } from "../log.js";

export interface DeidentifyResult {
  outDir: string;
  written: number;
  dropped: number;
  refused: number;
  /** First refusal reason, for the transfer record (no patient data). */
  refusedReason?: string;
  pseudoStudyInstanceUid?: string;
  pseudoSeriesInstanceUid?: string;
}

export function projectOf(cfg: FionaConfig, name: string): ProjectConfig {
  const p = cfg.projects.find((x) => x.name === name);
  if (!p) throw new UnrecoverableError(`project ${name} is not configured`);
  return p;
}

export function siteSecret(cfg: FionaConfig): string {
  if (!cfg.secret)
    throw new UnrecoverableError("no site secret configured (secret in the config file, or FIONA_SECRET)");
  return cfg.secret;
}

export interface SendResult {
  seriesInstanceUid: string;
  sent: number;
  /** Already accepted by the destination in an earlier attempt or run. */
  skipped: number;
  /** Refused for good by the destination (e.g. SOP class not supported). */
  failed: number;
  /** Refused by de-identification (unreadable, compressed pixels needing cleaning). */
  refused: number;
  dropped: number;
  warnings: number;
  pseudoStudyInstanceUid?: string;
  /** Why de-identification refused files of this series (the first reason). */
  refusedReason?: string;
  error?: string;
}

/** Where a project's studies go: its own destination, else researchPacs; undefined when neither is set. */
export function projectDestination(cfg: FionaConfig, project: ProjectConfig): Destination | undefined {
  return project.destination ?? cfg.researchPacs;
}

/** A project's destination as the sender takes it. */
export function storeDestinationFor(cfg: FionaConfig, project: string, logger: Logger): StoreDestination {
  const dest = projectDestination(cfg, projectOf(cfg, project));
  if (!dest)
    throw new UnrecoverableError(`project ${project} has no destination and no researchPacs is configured`);
  return { ...scuDestination(dest, cfg.aeTitle), timeoutMs: cfg.transfer.timeoutMs, logger };
}
