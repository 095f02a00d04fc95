/** Manual assignment of a study to a project and participant (Assign page, REST API, CLI). */
import { refuseSilentReassignment } from "../transfer/reassign.js";
import { validateRequest, type TransferRequest } from "../transfer/request.js";
import { startTransfer, type StartedTransfer } from "../transfer/start.js";
import type { RoutingDeps } from "./deps.js";

export interface AssignedTransfer extends StartedTransfer {
  /** Participants of the same project this study was sent as before (a confirmed re-assignment). */
  reassignedFrom?: string[];
}

/**
 * A manual assignment (Assign page, REST API, CLI): validate and start a transfer request. When the
 * project uses auto-ID, the participant ID is also reserved so that auto-ID never issues it to another
 * patient. `requestedBy` is the user name. A study already sent for the project as another participant
 * is refused (ReassignmentRefused) unless `replace` confirms the re-assignment.
 */
export async function assignStudy(
  deps: RoutingDeps,
  r: TransferRequest,
  opts: { replace?: boolean } = {},
): Promise<AssignedTransfer> {
  const project = validateRequest(r, deps.cfg.projects);
  const earlier = await refuseSilentReassignment(deps.transfers, r, opts.replace === true);
  if (project.autoId) await deps.autoIds.reserve(project.name, [r.participant]);
  const started = await startTransfer(deps, r);
  deps.log.info(
    {
      studyInstanceUid: r.studyInstanceUid,
      project: project.name,
      requestId: started.requestId,
      run: started.run,
      ...(earlier.length ? { reassignedFrom: earlier.map((t) => t.requestId) } : {}),
    },
    earlier.length ? "transfer re-assigned to another participant" : "transfer assigned",
  );
  return earlier.length
    ? { ...started, reassignedFrom: [...new Set(earlier.map((t) => t.participant))] }
    : started;
}
