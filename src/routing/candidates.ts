/**
 * Candidate transfer requests (from coupling rows, routing rules and auto-ID) turned into started
 * transfers: validated, de-duplicated, and skipped when they already ran for every image on disk.
 * Logs carry the study UID, project and request id only.
 */
import type { ProjectConfig } from "../config/schema.js";
import { studyFileCount } from "../ingest/study-files.js";
import type { StoredCouplingRow } from "../registry/coupling.js";
import { withLock } from "../registry/lock.js";
import {
  InvalidRequestError,
  requestId,
  validateRequest,
  type TransferRequest,
} from "../transfer/request.js";
import { sentToOtherParticipants } from "../transfer/reassign.js";
import { startTransfer, type StartedTransfer } from "../transfer/start.js";
import type { CouplingRow } from "./coupling.js";
import type { RoutingDeps } from "./deps.js";

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

export interface Candidate {
  source: RoutingSource;
  request: TransferRequest;
  couplingRowId?: string;
}

export const couplingCandidate = (
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

/** What an outcome says about its candidate, before the status. */
export const candidateOutcome = (studyUid: string, c: Candidate) => ({
  studyInstanceUid: studyUid,
  source: c.source,
  project: c.request.project,
  participant: c.request.participant,
  ...(c.request.event !== undefined ? { event: c.request.event } : {}),
  requestId: requestId(c.request),
  ...(c.couplingRowId !== undefined ? { couplingRowId: c.couplingRowId } : {}),
});

/** Run `fn` holding the study's routing lock, so that two routings of one study never interleave. */
export function withStudyLock<T>(deps: RoutingDeps, studyUid: string, fn: () => Promise<T>): Promise<T> {
  return withLock(deps.redis, `${deps.cfg.redis.prefix}:lock:route:${studyUid}`, fn, {
    ttlMs: 60_000,
    waitMs: 120_000,
    renew: true,
  });
}

/** Validate, de-duplicate and start candidates; existing requests that saw every image are skipped. */
export async function startCandidates(
  deps: RoutingDeps,
  studyUid: string,
  candidates: Candidate[],
  dryRun: boolean,
): Promise<RoutingOutcome[]> {
  const outcomes: RoutingOutcome[] = [];
  const seen = new Set<string>();
  let files: number | undefined;
  for (const c of candidates) {
    const base = candidateOutcome(studyUid, c);
    const id = base.requestId;
    if (seen.has(id)) continue;
    seen.add(id);
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
    if ((await sentToOtherParticipants(deps.transfers, c.request)).length) {
      const error =
        "already sent for this project as another participant; a person must confirm a re-assignment";
      deps.log.warn(
        { studyInstanceUid: studyUid, project: project.name, requestId: id, source: c.source },
        "automatic re-assignment to another participant refused",
      );
      outcomes.push({ ...base, status: "invalid", error });
      continue;
    }
    const existing = await deps.transfers.get(id);
    files ??= await studyFileCount(deps.paths, studyUid);
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
