/** Sending, ingest and transfer checks shared by the HA tests. */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { expect } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { SitePaths } from "../../src/paths.js";
import type { TransferRecord, TransferRegistry } from "../../src/registry/transfers.js";
import { storescu } from "../receiver/helpers.js";
import { waitFor } from "../support/env.js";
import type { GeneratedStudy } from "../support/generate.js";

export interface SendResult {
  /** Files storescu reported as stored (Success). */
  stored: string[];
  /** Files answered with another status, or never answered (association aborted). */
  failed: string[];
  /** Every response status text seen, e.g. "Success" or "Refused: OutOfResources". */
  statuses: string[];
  ms: number;
}

/** storescu -v -nh (do not halt on a failed store) over one association; per-file outcome from its log. */
export async function send(port: number, files: string[]): Promise<SendResult> {
  const started = Date.now();
  const r = await storescu(port, files, ["-v", "-nh"]);
  const outcome = new Map<string, string>();
  let current: string | undefined;
  for (const line of (r.stdout + r.stderr).split("\n")) {
    const sending = /Sending file: (.+)$/.exec(line);
    if (sending) current = sending[1]!.trim();
    const response = /Received Store Response \(([^)]*)\)/.exec(line);
    if (response && current !== undefined) outcome.set(current, response[1]!);
  }
  return {
    stored: files.filter((f) => outcome.get(f) === "Success"),
    failed: files.filter((f) => outcome.get(f) !== "Success"),
    statuses: [...outcome.values()],
    ms: Date.now() - started,
  };
}

export interface RetriedSend {
  /** Files that were refused at least once. */
  refused: Set<string>;
  /** Every response status text seen. */
  statuses: Set<string>;
  /** When the association that stored each file began (epoch ms). */
  storedAt: Map<string, number>;
}

/**
 * A sender as scanners behave: `batch` images per association, a short pause, and what was refused
 * sent again, until every file is stored. Each association must end within 15 s: a C-STORE is
 * answered, never held in a queue.
 */
export async function sendUntilStored(port: number, files: string[], batch = 8): Promise<RetriedSend> {
  const pending = [...files];
  const out: RetriedSend = { refused: new Set(), statuses: new Set(), storedAt: new Map() };
  const deadline = Date.now() + 60_000;
  while (pending.length > 0) {
    expect(Date.now(), "every image stored within a minute").toBeLessThan(deadline);
    const began = Date.now();
    const r = await send(port, pending.splice(0, batch));
    expect(r.ms).toBeLessThan(15_000);
    r.stored.forEach((f) => out.storedAt.set(f, began));
    r.failed.forEach((f) => out.refused.add(f));
    r.statuses.forEach((s) => out.statuses.add(s));
    pending.push(...r.failed);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return out;
}

/** SOP Instance UIDs ingest has linked under raw/<Study>/<Series>/. */
export function ingested(cfg: FionaConfig, study: GeneratedStudy): Set<string> {
  const paths = new SitePaths(cfg.dataDir);
  const out = new Set<string>();
  for (const series of study.seriesInstanceUids) {
    try {
      for (const f of readdirSync(paths.rawSeriesDir(study.studyInstanceUid, series))) out.add(f);
    } catch {
      // series not linked yet
    }
  }
  return out;
}

export async function waitIngested(cfg: FionaConfig, study: GeneratedStudy, sops: string[]): Promise<void> {
  await waitFor(
    () => sops.every((s) => ingested(cfg, study).has(s)),
    `${sops.length} instances ingested`,
    60_000,
    100,
  );
}

export async function transferFinished(
  transfers: TransferRegistry,
  requestId: string,
  run: number,
): Promise<TransferRecord> {
  return waitFor(
    async () => {
      const t = await transfers.get(requestId);
      return t && t.runs >= run && t.status !== "queued" ? t : undefined;
    },
    "transfer to finish",
    60_000,
    100,
  );
}

/**
 * Files storescp wrote for the pseudonymized study; each must carry none of the original's identifying
 * values (patient name and ID, accession number, StudyInstanceUID).
 */
export function receivedFor(dir: string, pseudoStudyUid: string, study: GeneratedStudy): string[] {
  const markers = [
    study.phi.patientName,
    study.phi.patientId,
    study.phi.accessionNumber,
    study.studyInstanceUid,
  ];
  const files = readdirSync(dir)
    .map((f) => path.join(dir, f))
    .filter((f) => readFileSync(f).includes(Buffer.from(pseudoStudyUid)));
  for (const f of files) {
    const bytes = readFileSync(f);
    for (const m of markers)
      expect(bytes.includes(Buffer.from(m)), `${m} in ${path.basename(f)}`).toBe(false);
  }
  return files;
}
