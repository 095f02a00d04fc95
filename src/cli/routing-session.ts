import { FlowProducer } from "bullmq";
import type { FionaConfig } from "../config/schema.js";
import { createLogger } from "../log.js";
import { SitePaths } from "../paths.js";
import { connectProducer } from "../queues/connection.js";
import { TransferRegistry } from "../registry/transfers.js";
import { createRoutingDeps, type RoutingDeps } from "../routing/deps.js";

/** Run a CLI command with what starting transfers needs (Redis, a flow producer, the registries), then close it. */
export async function withRouting<T>(cfg: FionaConfig, fn: (routing: RoutingDeps) => Promise<T>): Promise<T> {
  const redis = await connectProducer(cfg.redis);
  const flow = new FlowProducer({ connection: redis, prefix: cfg.redis.prefix });
  try {
    const paths = new SitePaths(cfg.dataDir);
    const transfers = new TransferRegistry(redis, cfg.redis.prefix);
    return await fn(
      createRoutingDeps({ cfg, paths, flow, transfers, log: createLogger(cfg.log.level) }, redis),
    );
  } finally {
    await flow.close();
    redis.disconnect();
  }
}
