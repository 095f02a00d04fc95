/**
 * Routing of a study that has arrived: its coupling rows, the routing rules and auto-ID each propose
 * transfer requests, which are then started (see candidates.ts).
 */
import { AutoIdError } from "../registry/autoid.js";
import {
  startCandidates,
  withStudyLock,
  couplingCandidate,
  type Candidate,
  type RoutingOutcome,
} from "./candidates.js";
import type { RoutingDeps } from "./deps.js";
import { evaluateRules } from "./rules.js";
import { readStudyFacts } from "./study-facts.js";

/**
 * Evaluate coupling rows, routing rules and auto-ID for a study that has arrived, and start the
 * transfers that are new or have new images since their last run. Idempotent: a request already run
 * for the images on disk is left alone. Serialised per study with a Redis lock.
 */
export async function routeStudy(deps: RoutingDeps, studyUid: string): Promise<RoutingOutcome[]> {
  return withStudyLock(deps, studyUid, () => routeStudyLocked(deps, studyUid));
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
