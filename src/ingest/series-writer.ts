import { promises as fs } from "node:fs";
import type { Redis } from "ioredis";
import { classify, type CompiledRules } from "../classify/index.js";
import type { DicomHeader } from "../dicom/header.js";
import { readJsonIfExists, writeFileAtomic } from "../fs/atomic.js";
import type { SitePaths } from "../paths.js";
import { registryKeys } from "../registry/keys.js";
import { withLock } from "../registry/lock.js";
import { KeyedBatcher } from "../util/keyed-batcher.js";
import { mergeSummary, summarizeFile, type SeriesSummary } from "./series-summary.js";

export interface Connection {
  callingAe: string;
  calledAe: string;
  peer: string;
}

interface FileUpdate {
  study: string;
  header: DicomHeader;
  conn: Connection;
}

/**
 * Updates raw/<Study>/<Series>.json. Files of one series that arrive while a write is in progress are
 * merged and classified in arrival order and written together: one lock, one read and one atomic
 * write per batch instead of per file. The Redis lock keeps several worker processes from
 * interleaving their read-modify-write.
 */
export class SeriesWriter {
  private readonly batcher = new KeyedBatcher<FileUpdate, SeriesSummary>((series, items) =>
    withLock(this.redis, registryKeys(this.prefix).seriesLock(series), () => this.write(series, items), {
      // A short lease, renewed while writing: a killed worker holds up the series seconds, not half a minute.
      ttlMs: 5_000,
      renew: true,
      waitMs: 60_000,
    }),
  );

  constructor(
    private readonly paths: SitePaths,
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly rules: () => CompiledRules,
  ) {}

  /** Resolves with the series summary once this file is part of a written JSON. */
  submit(study: string, series: string, header: DicomHeader, conn: Connection): Promise<SeriesSummary> {
    return this.batcher.submit(series, { study, header, conn });
  }

  private async write(series: string, batch: FileUpdate[]): Promise<SeriesSummary> {
    const study = batch[0]!.study;
    const jsonPath = this.paths.seriesJson(study, series);
    const existing = await readJsonIfExists<SeriesSummary>(jsonPath);
    let current = existing;
    let types = existing?.ClassifyType ?? [];
    for (const { header, conn } of batch) {
      current = mergeSummary(current, summarizeFile(header, conn));
      // Each file is classified against the types as they stood before it, as FIONA does.
      types = classify(this.rules(), { ...current, ClassifyType: types }, header, types);
    }
    const merged: SeriesSummary = { ...current!, ClassifyType: types };
    // Distinct SOP instances on disk: a re-send replaces nothing and adds nothing.
    merged.NumFiles = String((await fs.readdir(this.paths.rawSeriesDir(study, series))).length);
    await writeFileAtomic(jsonPath, JSON.stringify(sortKeys(merged), null, 2));
    return merged;
  }
}

function sortKeys<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b))) as T;
}
