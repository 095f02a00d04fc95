/**
 * Classification of a series replayed from its files, as ingest did it: the files in the order they
 * were filed, each merged into the summary and classified against the types as they stood before it
 * (src/ingest/series-writer.ts). Only ClassifyType is recomputed; the rest of the series JSON stays.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { classify, type CompiledRules } from "../classify/index.js";
import { readHeaderFile } from "../dicom/header.js";
import { mergeSummary, summarizeFile, type SeriesSummary } from "../ingest/series-summary.js";

/** Files of raw/<Study>/<Series>/ in the order ingest linked them (link time, then name). */
export async function filesInIngestOrder(dir: string): Promise<string[]> {
  const names = await fs.readdir(dir);
  const stamped = await Promise.all(
    names.map(async (n) => ({ file: path.join(dir, n), ms: (await fs.lstat(path.join(dir, n))).mtimeMs })),
  );
  return stamped.sort((a, b) => a.ms - b.ms || a.file.localeCompare(b.file)).map((s) => s.file);
}

/** ClassifyType of the series under `rules`; the connection is the one recorded in its JSON. */
export async function replayClassification(
  rules: CompiledRules,
  files: readonly string[],
  stored: SeriesSummary,
): Promise<string[]> {
  const c = stored.IncomingConnection;
  const conn = {
    callingAe: c?.AETitleCaller ?? "",
    calledAe: c?.AETitleCalled ?? "",
    peer: c?.CallerIP ?? "",
  };
  let current: SeriesSummary | undefined;
  let types: string[] = [];
  for (const file of files) {
    const header = await readHeaderFile(file);
    current = mergeSummary(current, summarizeFile(header, conn));
    types = classify(rules, { ...current, NumFiles: stored.NumFiles, ClassifyType: types }, header, types);
  }
  return types;
}

/** Whether two ClassifyType lists hold the same types (the order follows the rules file). */
export const sameTypes = (a: readonly string[], b: readonly string[]) =>
  new Set(a).size === new Set(b).size && a.every((t) => b.includes(t));
