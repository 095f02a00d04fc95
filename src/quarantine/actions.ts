import type { AuditLog } from "../registry/audit.js";
import { retryQuarantined, RetryRefused, type RetryDeps, type RetryOutcome } from "./retry.js";

export interface Actor {
  user: string;
  /** How the caller signed in (cli, password, basic…). */
  via: string;
  ip?: string;
}

export interface ActionDeps extends RetryDeps {
  audit: AuditLog;
}

/** Retry or dismiss one quarantine record for a caller, and audit it: the one path for CLI and web. */
export async function actOnQuarantined(
  deps: ActionDeps,
  action: "retry" | "dismiss",
  id: string,
  actor: Actor,
): Promise<RetryOutcome | { kind: "dismissed" }> {
  const record = await deps.store.get(id);
  if (!record) throw new RetryRefused(`no quarantine record ${id}`, 404);
  const outcome =
    action === "retry"
      ? await retryQuarantined(deps, record, actor.user)
      : (await deps.store.remove(id), { kind: "dismissed" as const });
  const { studyInstanceUid, project, participant, requestId } = record.ids;
  await deps.audit.record({
    ...actor,
    action: `quarantine-${action}`,
    ...(studyInstanceUid ? { study: studyInstanceUid } : {}),
    ...(project ? { project } : {}),
    ...(participant ? { participant } : {}),
    ...(requestId ? { requestId } : {}),
    ...("run" in outcome ? { run: outcome.run } : {}),
    detail: `${record.stage} ${record.id}`,
  });
  return outcome;
}
