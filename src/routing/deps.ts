/** The registries routing works with: built from the configuration, and pruned by the cleanup job. */
import type { Redis } from "ioredis";
import type { Logger } from "../log.js";
import { AutoIdRegistry } from "../registry/autoid.js";
import { CouplingRegistry } from "../registry/coupling.js";
import { identifierKey } from "../registry/identifier-key.js";
import { StudyRegistry } from "../registry/studies.js";
import type { TransferDeps } from "../transfer/start.js";

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
  // Read (or made) when first needed: assignments and retries need no key.
  const key = () => identifierKey(cfg);
  return {
    ...base,
    redis,
    studies: new StudyRegistry(redis, prefix, {
      retentionDays: cfg.incoming.retentionDays,
      identifierKey: key,
    }),
    coupling: new CouplingRegistry(redis, prefix, {
      expiryDays: cfg.coupling.expiryDays,
      identifierKey: key,
    }),
    autoIds: new AutoIdRegistry(redis, prefix, cfg.secret),
  };
}

/** Remove expired entries: studies past incoming.retentionDays and expired coupling rows. */
export async function pruneRouting(deps: Pick<RoutingDeps, "studies" | "coupling">, now = Date.now()) {
  const [studies, couplingRows] = await Promise.all([deps.studies.prune(now), deps.coupling.prune(now)]);
  return { studies, couplingRows };
}
