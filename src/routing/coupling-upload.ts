/** The coupling-list upload: rows stored with an expiry and applied at once to matching studies. */
import type { StudyEntry } from "../registry/studies.js";
import {
  candidateOutcome,
  couplingCandidate,
  startCandidates,
  withStudyLock,
  type RoutingOutcome,
} from "./candidates.js";
import { parseCouplingCsv, type CouplingRow, type CsvError } from "./coupling.js";
import type { RoutingDeps } from "./deps.js";

export interface CouplingUploadOptions {
  /** Parse, validate and preview the matches; store and start nothing. */
  dryRun?: boolean;
  now?: number;
}

export interface CouplingUploadResult {
  /** Valid rows of the file (line numbers refer to the file). */
  rows: CouplingRow[];
  /** Rows stored (0 for a dry run or when the file has errors). */
  stored: number;
  /** Matches among the studies in the incoming list, and what happened (or would happen) to each. */
  matchedNow: RoutingOutcome[];
  /** Problems with line numbers; when there are any, nothing is stored or started. */
  errors: CsvError[];
}

/**
 * Upload a coupling list (CSV; see coupling.ts). All or nothing: a file with errors is
 * rejected as a whole. Otherwise its rows are stored with an expiry (coupling.expiryDays) and applied at
 * once to the studies in the incoming list that they match (by accession number or StudyInstanceUID),
 * and later to studies that arrive while the rows are kept. Every matching row is honoured.
 */
export async function uploadCouplingList(
  deps: RoutingDeps,
  csv: string,
  uploadedBy: string,
  opts: CouplingUploadOptions = {},
): Promise<CouplingUploadResult> {
  const now = opts.now ?? Date.now();
  const { rows, errors } = parseCouplingCsv(csv, deps.cfg.projects);
  if (errors.length) return { rows, stored: 0, matchedNow: [], errors };

  // Studies each row matches: one lookup per distinct accession number / UID.
  const byStudy = new Map<string, { study: StudyEntry; rows: Array<CouplingRow & { id?: string }> }>();
  const accessionCache = new Map<string, StudyEntry[]>();
  for (const row of rows) {
    const matches: StudyEntry[] = [];
    if (row.accessionNumber) {
      let found = accessionCache.get(row.accessionNumber);
      if (!found) {
        found = await deps.studies.findByAccession(row.accessionNumber, now);
        accessionCache.set(row.accessionNumber, found);
      }
      matches.push(...found);
    }
    if (row.studyInstanceUid && (await deps.studies.isListed(row.studyInstanceUid, now))) {
      const s = await deps.studies.get(row.studyInstanceUid);
      if (s) matches.push(s);
    }
    for (const study of matches) {
      const entry = byStudy.get(study.studyInstanceUid) ?? { study, rows: [] };
      entry.rows.push(row);
      byStudy.set(study.studyInstanceUid, entry);
    }
  }

  let stored = 0;
  if (!opts.dryRun) {
    const saved = await deps.coupling.add(rows, uploadedBy, now);
    stored = saved.length;
    for (const entry of byStudy.values())
      entry.rows = entry.rows.map((r) => ({ ...r, id: deps.coupling.rowId(r) }));
  }

  const matchedNow: RoutingOutcome[] = [];
  for (const [uid, { study, rows: studyRows }] of byStudy) {
    const candidates = studyRows.map((r) => couplingCandidate(uid, r));
    if (study.status !== "arrived") {
      // Still receiving: the arrival applies the stored rows.
      for (const c of candidates) matchedNow.push({ ...candidateOutcome(uid, c), status: "pending-arrival" });
      continue;
    }
    const outcomes = opts.dryRun
      ? await startCandidates(deps, uid, candidates, true)
      : await withStudyLock(deps, uid, () => startCandidates(deps, uid, candidates, false));
    matchedNow.push(...outcomes);
  }
  deps.log.info(
    {
      rows: rows.length,
      stored,
      matchedStudies: byStudy.size,
      started: matchedNow.filter((m) => m.status === "started").length,
      uploadedBy,
      dryRun: !!opts.dryRun,
    },
    "coupling list uploaded",
  );
  return { rows, stored, matchedNow, errors: [] };
}
