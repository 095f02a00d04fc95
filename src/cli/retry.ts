import os from "node:os";
import { FlowProducer } from "bullmq";
import type { FionaConfig } from "../config/schema.js";
import { createLogger } from "../log.js";
import { SitePaths } from "../paths.js";
import { connectProducer } from "../queues/connection.js";
import { AuditLog } from "../registry/audit.js";
import { TransferRegistry } from "../registry/transfers.js";
import { createRoutingDeps } from "../routing/deps.js";
import { retryTransfer } from "../routing/retry.js";

/**
 * `fiona retry <request id>`: a new run of a transfer request, as the Assign page's Retry (refused
 * while its latest run is still going), audited with the operating-system user.
 */
export async function retryCli(cfg: FionaConfig, requestId: string): Promise<void> {
  const redis = await connectProducer(cfg.redis);
  const flow = new FlowProducer({ connection: redis, prefix: cfg.redis.prefix });
  const log = createLogger(cfg.log.level);
  const user = os.userInfo().username;
  try {
    const routing = createRoutingDeps(
      {
        cfg,
        paths: new SitePaths(cfg.dataDir),
        flow,
        transfers: new TransferRegistry(redis, cfg.redis.prefix),
        log,
      },
      redis,
    );
    const { request, started } = await retryTransfer(routing, requestId, user);
    await new AuditLog(redis, cfg.redis.prefix).record({
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
  } finally {
    await flow.close();
    redis.disconnect();
  }
}
