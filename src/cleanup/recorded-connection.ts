/**
 * The association an archived file came with, for an ingest job made after the fact: the study's
 * entry in the incoming list, else a series JSON of the study (both keep the first association's AE
 * titles and address), else the calling AE title the receiver wrote into the file's Part-10 header
 * (SourceApplicationEntityTitle) with a placeholder called AE title and no address. Routing by
 * called AE title (rules, auto-ID) cannot match the placeholder: such a study is assigned by hand.
 */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { readHeaderFile } from "../dicom/header.js";
import { readJsonIfExists } from "../fs/atomic.js";
import type { SeriesSummary } from "../ingest/series-summary.js";
import type { SitePaths } from "../paths.js";
import type { StudyRegistry } from "../registry/studies.js";

export interface RecordedConnection {
  callingAe: string;
  calledAe: string;
  peer: string;
}

/** AE title standing in for one nothing recorded. */
const UNKNOWN_AE = "RECONCILER";

async function fromSeriesJson(paths: SitePaths, study: string): Promise<RecordedConnection | undefined> {
  const dir = paths.rawStudyDir(study);
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.endsWith(".json") && !n.startsWith("."))) {
    const c = (await readJsonIfExists<SeriesSummary>(path.join(dir, name)).catch(() => undefined))
      ?.IncomingConnection;
    if (c?.AETitleCaller && c.AETitleCalled)
      return { callingAe: c.AETitleCaller, calledAe: c.AETitleCalled, peer: c.CallerIP };
  }
  return undefined;
}

async function fromFile(file: string): Promise<RecordedConnection> {
  const callingAe = await readHeaderFile(file)
    .then((h) => h.string("SourceApplicationEntityTitle"))
    .catch(() => undefined);
  return { callingAe: callingAe || UNKNOWN_AE, calledAe: UNKNOWN_AE, peer: "" };
}

export async function recordedConnection(
  deps: { paths: SitePaths; studies: StudyRegistry },
  study: string,
  file: string,
): Promise<RecordedConnection> {
  const entry = await deps.studies.get(study);
  if (entry?.callingAe && entry.calledAe)
    return { callingAe: entry.callingAe, calledAe: entry.calledAe, peer: entry.peer ?? "" };
  return (await fromSeriesJson(deps.paths, study)) ?? (await fromFile(file));
}
