/**
 * The identity values routing matches on (AE titles, PatientID, PatientName, AccessionNumber), read
 * from the series JSON on disk when needed and kept in memory only: never in job data or logs.
 */
import { readStudySummaries } from "../ingest/study-summaries.js";
import type { SitePaths } from "../paths.js";
import type { StudyIdentity } from "./rules.js";

export interface StudyFacts {
  /** Distinct (AE titles, PatientID, PatientName) combinations over the study's series. */
  identities: StudyIdentity[];
  accessionNumbers: string[];
}

const text = (v: unknown) => (v === undefined || v === null ? undefined : String(v));

/** Read the identity values routing needs from raw/<Study>/<Series>.json. */
export async function readStudyFacts(deps: { paths: SitePaths }, studyUid: string): Promise<StudyFacts> {
  const identities = new Map<string, StudyIdentity>();
  const accessions = new Set<string>();
  for (const { summary: s } of await readStudySummaries(deps.paths, studyUid)) {
    const id: StudyIdentity = {
      calledAe: s.IncomingConnection?.AETitleCalled?.trim(),
      callingAe: s.IncomingConnection?.AETitleCaller?.replace(/^[ \t\0]+|[ \t\0]+$/g, ""),
      patientId: text(s.PatientID),
      patientName: text(s.PatientName),
    };
    identities.set(JSON.stringify([id.calledAe, id.callingAe, id.patientId, id.patientName]), id);
    const acc = text(s.AccessionNumber)?.trim();
    if (acc) accessions.add(acc);
  }
  return { identities: [...identities.values()], accessionNumbers: [...accessions] };
}
