/**
 * Automatic assignment of studies: routing rules, coupling lists and auto-ID turned into transfer
 * requests, plus the coupling-list upload and the manual
 * assignment used by the Assign page and the REST API.
 *
 * Identity values (PatientID, PatientName, AccessionNumber) are read from the series JSON on disk when
 * needed and never put into job data or logs; logs carry the study UID, project and request id only.
 */
import { promises as fs } from "node:fs";
import type { Redis } from "ioredis";
import type { ProjectConfig } from "../config/schema.js";
import { readStudySummaries } from "../ingest/study-summaries.js";
import type { Logger } from "../log.js";
import { AutoIdError, AutoIdRegistry } from "../registry/autoid.js";
import { CouplingRegistry, type StoredCouplingRow } from "../registry/coupling.js";
import { withLock } from "../registry/lock.js";
import { StudyRegistry, type StudyEntry } from "../registry/studies.js";
import type { TransferRecord } from "../registry/transfers.js";
import {
  InvalidRequestError,
  requestId,
  validateRequest,
  type TransferRequest,
} from "../transfer/request.js";
import { startTransfer, studySeries, type StartedTransfer, type TransferDeps } from "../transfer/start.js";
import { parseCouplingCsv, type CouplingRow, type CsvError } from "./coupling.js";
import { evaluateRules, type StudyIdentity } from "./rules.js";

export interface RoutingDeps extends TransferDeps {
  redis: Redis;
  log: Logger;
  studies: StudyRegistry;
  coupling: CouplingRegistry;
  autoIds: AutoIdRegistry;
}

/** Build the registries routing needs from the configuration and one Redis connection. */
export function createRoutingDeps(base: TransferDeps & { log: Logger }, redis: Redis): RoutingDeps {
  const { cfg } = base;
  const prefix = cfg.redis.prefix;
  return {
    ...base,
    redis,
    studies: new StudyRegistry(redis, prefix, { retentionDays: cfg.quarantine.retentionDays }),
    coupling: new CouplingRegistry(redis, prefix, { expiryDays: cfg.coupling.expiryDays }),
    autoIds: new AutoIdRegistry(redis, prefix, cfg.secret),
  };
}

/** Who made an automatic request (TransferRecord.requestedBy). */
export type RoutingSource = "routing" | "coupling" | "autoid";

export interface RoutingOutcome {
  studyInstanceUid: string;
  source: RoutingSource;
  project: string;
  /** The pseudonymous participant (for the caller and the UI; never logged). */
  participant: string;
  event?: string;
  requestId: string;
  /**
   * started: a transfer run was started; exists: the request already ran (or runs) for these images;
   * planned: a dry run would start it; pending-arrival: the study is still receiving, its arrival will
   * start it; invalid: the request fails validation (unknown project, participant pattern …);
   * error: auto-ID could not issue an ID.
   */
  status: "started" | "exists" | "planned" | "pending-arrival" | "invalid" | "error";
  run?: number;
  error?: string;
  /** Coupling rows only: the row id. */
  couplingRowId?: string;
}

/** What routing reads from a study's series JSON files (in memory only). */
export interface StudyFacts {
  /** Distinct (AE titles, PatientID, PatientName) combinations over the study's series. */
  identities: StudyIdentity[];
  accessionNumbers: string[];
}

const text = (v: unknown) => (v === undefined || v === null ? undefined : String(v));

/** Read the identity values routing needs from raw/<Study>/<Series>.json. */
export async function readStudyFacts(
  deps: Pick<TransferDeps, "paths">,
  studyUid: string,
): Promise<StudyFacts> {
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

interface Candidate {
  source: RoutingSource;
  request: TransferRequest;
  couplingRowId?: string;
}

const routeLock = (deps: RoutingDeps, studyUid: string) => `${deps.cfg.redis.prefix}:lock:route:${studyUid}`;

async function filesOnDisk(deps: TransferDeps, studyUid: string): Promise<number> {
  const series = await studySeries(deps.paths, studyUid);
  const counts = await Promise.all(
    series.map((s) =>
      fs.readdir(deps.paths.rawSeriesDir(studyUid, s)).then(
        (f) => f.length,
        () => 0,
      ),
    ),
  );
  return counts.reduce((a, b) => a + b, 0);
}

const couplingCandidate = (
  studyUid: string,
  row: StoredCouplingRow | (CouplingRow & { id?: string }),
): Candidate => ({
  source: "coupling",
  request: {
    studyInstanceUid: studyUid,
    project: row.project,
    participant: row.participant,
    ...(row.event !== undefined ? { event: row.event } : {}),
    requestedBy: "coupling",
  },
  ...(row.id !== undefined ? { couplingRowId: row.id } : {}),
});

/**
 * Evaluate coupling rows, routing rules and auto-ID for a study that has arrived, and start the
 * transfers that are new or have new images since their last run. Idempotent: a request already run
 * for the images on disk is left alone. Serialised per study with a Redis lock.
 */
export async function routeStudy(deps: RoutingDeps, studyUid: string): Promise<RoutingOutcome[]> {
  return withLock(deps.redis, routeLock(deps, studyUid), () => routeStudyLocked(deps, studyUid), {
    ttlMs: 60_000,
    waitMs: 120_000,
    renew: true,
  });
}

async function routeStudyLocked(deps: RoutingDeps, studyUid: string): Promise<RoutingOutcome[]> {
  const facts = await readStudyFacts(deps, studyUid);
  if (facts.identities.length === 0) return [];
  const candidates: Candidate[] = [];
  const outcomes: RoutingOutcome[] = [];

  for (const row of await deps.coupling.forStudy(studyUid, facts.accessionNumbers)) {
    candidates.push(couplingCandidate(studyUid, row));
  }
  for (const identity of facts.identities) {
    for (const d of evaluateRules(deps.cfg.routing.rules, identity)) {
      candidates.push({
        source: "routing",
        request: {
          studyInstanceUid: studyUid,
          project: d.project,
          participant: d.participant,
          ...(d.event !== undefined ? { event: d.event } : {}),
          requestedBy: "routing",
        },
      });
    }
  }

  // Auto-ID, as populateAutoID.py: only when the study is not assigned to that project otherwise.
  const autoProjects = deps.cfg.projects.filter((p) => p.autoId);
  if (autoProjects.length) {
    const existing = await deps.transfers.forStudy(studyUid);
    const assignedElsewhere = (project: string) =>
      existing.some((t) => t.project === project && t.requestedBy !== "autoid") ||
      candidates.some((c) => c.request.project === project);
    for (const identity of facts.identities) {
      for (const project of autoProjects) {
        if (identity.calledAe !== project.autoId!.aeTitle.trim() || assignedElsewhere(project.name)) continue;
        try {
          const { participant, created } = await deps.autoIds.idFor(project, identity.patientId ?? "");
          if (created)
            deps.log.info(
              { studyInstanceUid: studyUid, project: project.name },
              "auto-ID issued a new participant ID",
            );
          candidates.push({
            source: "autoid",
            request: {
              studyInstanceUid: studyUid,
              project: project.name,
              participant,
              requestedBy: "autoid",
            },
          });
        } catch (e) {
          if (!(e instanceof AutoIdError)) throw e;
          deps.log.error(
            { studyInstanceUid: studyUid, project: project.name, err: e.message },
            "auto-ID failed",
          );
          outcomes.push({
            studyInstanceUid: studyUid,
            source: "autoid",
            project: project.name,
            participant: "",
            requestId: "",
            status: "error",
            error: e.message,
          });
        }
      }
    }
  }

  outcomes.push(...(await startCandidates(deps, studyUid, candidates, false)));
  return outcomes;
}

/** Validate, de-duplicate and start candidates; existing requests that saw every image are skipped. */
async function startCandidates(
  deps: RoutingDeps,
  studyUid: string,
  candidates: Candidate[],
  dryRun: boolean,
): Promise<RoutingOutcome[]> {
  const outcomes: RoutingOutcome[] = [];
  const seen = new Set<string>();
  let files: number | undefined;
  for (const c of candidates) {
    const id = requestId(c.request);
    if (seen.has(id)) continue;
    seen.add(id);
    const base = {
      studyInstanceUid: studyUid,
      source: c.source,
      project: c.request.project,
      participant: c.request.participant,
      ...(c.request.event !== undefined ? { event: c.request.event } : {}),
      requestId: id,
      ...(c.couplingRowId !== undefined ? { couplingRowId: c.couplingRowId } : {}),
    };
    let project: ProjectConfig;
    try {
      project = validateRequest(c.request, deps.cfg.projects);
    } catch (e) {
      if (!(e instanceof InvalidRequestError)) throw e;
      deps.log.warn(
        {
          studyInstanceUid: studyUid,
          project: c.request.project,
          requestId: id,
          source: c.source,
          err: e.message,
        },
        "automatic assignment is not valid; not started",
      );
      outcomes.push({ ...base, status: "invalid", error: e.message });
      continue;
    }
    const existing: TransferRecord | undefined = await deps.transfers.get(id);
    files ??= await filesOnDisk(deps, studyUid);
    if (existing && existing.sourceFiles >= files) {
      outcomes.push({ ...base, status: "exists" });
      continue;
    }
    if (dryRun) {
      outcomes.push({ ...base, status: "planned" });
      continue;
    }
    // Keep auto-ID from ever drawing an ID that was given out by other means.
    if (project.autoId && c.source !== "autoid")
      await deps.autoIds.reserve(project.name, [c.request.participant]);
    let started: StartedTransfer;
    try {
      started = await startTransfer(deps, c.request);
    } catch (e) {
      if (!(e instanceof InvalidRequestError)) throw e;
      deps.log.warn(
        { studyInstanceUid: studyUid, project: project.name, requestId: id, err: e.message },
        "transfer not started",
      );
      outcomes.push({ ...base, status: "invalid", error: e.message });
      continue;
    }
    deps.log.info(
      {
        studyInstanceUid: studyUid,
        project: project.name,
        requestId: started.requestId,
        run: started.run,
        source: c.source,
      },
      "transfer started automatically",
    );
    outcomes.push({ ...base, status: "started", run: started.run });
  }
  return outcomes;
}

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
  /** Matches among the studies in the quarantine list, and what happened (or would happen) to each. */
  matchedNow: RoutingOutcome[];
  /** Problems with line numbers; when there are any, nothing is stored or started. */
  errors: CsvError[];
}

/**
 * Upload a coupling list (CSV; see src/routing/coupling.ts). All or nothing: a file with errors is
 * rejected as a whole. Otherwise its rows are stored with an expiry (coupling.expiryDays) and applied at
 * once to the studies in the quarantine list that they match (by accession number or StudyInstanceUID),
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
      entry.rows = entry.rows.map((r) => ({ ...r, id: CouplingRegistry.rowId(r) }));
  }

  const matchedNow: RoutingOutcome[] = [];
  for (const [uid, { study, rows: studyRows }] of byStudy) {
    const candidates = studyRows.map((r) => couplingCandidate(uid, r));
    if (study.status !== "arrived") {
      // Still receiving: the arrival applies the stored rows.
      for (const c of candidates) {
        matchedNow.push({
          studyInstanceUid: uid,
          source: "coupling",
          project: c.request.project,
          participant: c.request.participant,
          ...(c.request.event !== undefined ? { event: c.request.event } : {}),
          requestId: requestId(c.request),
          status: "pending-arrival",
          ...(c.couplingRowId !== undefined ? { couplingRowId: c.couplingRowId } : {}),
        });
      }
      continue;
    }
    const outcomes = opts.dryRun
      ? await startCandidates(deps, uid, candidates, true)
      : await withLock(
          deps.redis,
          routeLock(deps, uid),
          () => startCandidates(deps, uid, candidates, false),
          {
            ttlMs: 60_000,
            waitMs: 120_000,
            renew: true,
          },
        );
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

/**
 * A manual assignment (Assign page, REST API, CLI): validate and start a transfer request. When the
 * project uses auto-ID, the participant ID is also reserved so that auto-ID never issues it to another
 * patient. `requestedBy` is the user name.
 */
export async function assignStudy(deps: RoutingDeps, r: TransferRequest): Promise<StartedTransfer> {
  const project = validateRequest(r, deps.cfg.projects);
  if (project.autoId) await deps.autoIds.reserve(project.name, [r.participant]);
  const started = await startTransfer(deps, r);
  deps.log.info(
    {
      studyInstanceUid: r.studyInstanceUid,
      project: project.name,
      requestId: started.requestId,
      run: started.run,
    },
    "transfer assigned",
  );
  return started;
}

/** Remove expired entries: studies past quarantine.retentionDays and expired coupling rows. */
export async function pruneRouting(deps: Pick<RoutingDeps, "studies" | "coupling">, now = Date.now()) {
  const [studies, couplingRows] = await Promise.all([deps.studies.prune(now), deps.coupling.prune(now)]);
  return { studies, couplingRows };
}
