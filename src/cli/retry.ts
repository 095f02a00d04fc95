import os from "node:os";
import type { FionaConfig } from "../config/schema.js";
import { AuditLog } from "../registry/audit.js";
import { retryTransfer } from "../routing/retry.js";
import { withRouting } from "./routing-session.js";

/**
 * `fiona retry <request id>`: a new run of a transfer request, as the Assign page's Retry (refused
 * while its latest run is still going), audited with the operating-system user.
 */
export async function retryCli(cfg: FionaConfig, requestId: string): Promise<void> {
  const user = os.userInfo().username;
  await withRouting(cfg, async (routing) => {
    const { request, started } = await retryTransfer(routing, requestId, user);
    await new AuditLog(routing.redis, cfg.redis.prefix).record({
      user,
      via: "cli",
      action: "retry",
      study: request.studyInstanceUid,
      project: request.project,
      participant: request.participant,
      ...(request.event !== undefined ? { event: request.event } : {}),
      requestId: started.requestId,
      run: started.run,
    });
    console.log(`transfer ${started.requestId} run ${started.run}: ${started.series} series queued`);
  });
}
