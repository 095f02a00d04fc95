/**
 * The inventory of one project: C-FIND STUDY with InstitutionName=<project>, split into PatientID
 * buckets (buckets.ts) wherever the PACS does not end the answer with Success. The query itself is
 * passed in, so this logic runs against any PACS (and, in tests, against a real one).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { FindResult } from "../dimse/find.js";
import { bucketKey, splitBucket, type Bucket } from "./buckets.js";
import { mergeStudies, studyFromMatch, type InventoryStudy } from "./studies.js";

/** Asks the PACS for the project's studies whose PatientID matches the key ("" = all). */
export type StudyQuery = (patientIdKey: string) => Promise<FindResult>;

export interface CrawlOptions {
  alphabet: string;
  maxDepth: number;
  pauseMs: number;
}

export interface CrawlResult {
  studies: InventoryStudy[];
  /** False when some bucket was still refused at the maximum depth: studies may be missing. */
  complete: boolean;
  /** Buckets refused at the maximum depth, as PatientID keys (`*123`). */
  incompleteBuckets: string[];
  queries: number;
}

export async function crawlProject(
  query: StudyQuery,
  project: string,
  o: CrawlOptions,
): Promise<CrawlResult> {
  const pending: Bucket[] = [""];
  const found: InventoryStudy[] = [];
  const incomplete: string[] = [];
  let queries = 0;
  for (let b = pending.shift(); b !== undefined; b = pending.shift()) {
    if (queries > 0 && o.pauseMs > 0) await sleep(o.pauseMs);
    const r = await query(bucketKey(b));
    queries++;
    // A refused answer may still carry real matches (Orthanc sends the first N, then Cancel).
    for (const m of r.matches) {
      const s = studyFromMatch(m);
      // A PACS that cannot match on InstitutionName returns other projects' studies too.
      if (s && (s.institutionName === undefined || s.institutionName === project)) found.push(s);
    }
    if (r.status === "success") continue;
    const children = splitBucket(b, o.alphabet, o.maxDepth);
    if (children.length) pending.push(...children);
    else incomplete.push(bucketKey(b) || "*");
  }
  return {
    studies: mergeStudies(found),
    complete: incomplete.length === 0,
    incompleteBuckets: incomplete,
    queries,
  };
}
