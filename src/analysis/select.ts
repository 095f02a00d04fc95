import type { SeriesSummary } from "../ingest/series-summary.js";
import { readStudySummaries, type StudySeriesSummary } from "../ingest/study-summaries.js";
import type { SitePaths } from "../paths.js";
import type { AnalysisJobConfig, TagCondition } from "./config.js";

export type SelectedSeries = StudySeriesSummary;

function fieldText(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) return v.map(String).join("\\");
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

function conditionHolds(c: TagCondition, summary: SeriesSummary): boolean {
  const text = fieldText(summary[c.tag]);
  if (text === undefined) return c.op === "!=";
  const want = String(c.value);
  switch (c.op) {
    case "==":
      return text.trim() === want;
    case "!=":
      return text.trim() !== want;
    case "contains":
      return text.includes(want);
    case "regexp":
      return new RegExp(want).test(text);
    case "<":
    case ">": {
      const a = Number(text);
      const b = Number(c.value);
      if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
      return c.op === "<" ? a < b : a > b;
    }
  }
}

function seriesMatches(job: AnalysisJobConfig, summary: SeriesSummary): boolean {
  const types = job.select.classifyTypes;
  if (types.length && !types.some((t) => summary.ClassifyType?.includes(t))) return false;
  return job.select.tags.every((c) => conditionHolds(c, summary));
}

/** Series of a received study, from the per-series JSON files under raw/. */
export const studySeries = (paths: SitePaths, studyInstanceUid: string): Promise<SelectedSeries[]> =>
  readStudySummaries(paths, studyInstanceUid);

/** The series a job takes from a study: matching series, or the whole study when one matches (level study). */
export function selectSeries(job: AnalysisJobConfig, series: SelectedSeries[]): SelectedSeries[] {
  const matching = series.filter((s) => seriesMatches(job, s.summary));
  if (job.select.level === "study") return matching.length ? series : [];
  return matching;
}
