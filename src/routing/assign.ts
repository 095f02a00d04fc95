/** Manual assignment of a study to a project and participant (Assign page, REST API, CLI). */
import { validateRequest, type TransferRequest } from "../transfer/request.js";
import { startTransfer, type StartedTransfer } from "../transfer/start.js";
import type { RoutingDeps } from "./deps.js";

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
