/** What the API's resources share: configuration, registries, the caller's grants. */
import type { FlowProducer } from "bullmq";
import type { Redis } from "ioredis";
import type { FionaConfig, ProjectConfig } from "../../config/schema.js";
import type { Logger } from "../../log.js";
import { SitePaths } from "../../paths.js";
import { AuditLog } from "../../registry/audit.js";
import { identifierKey } from "../../registry/identifier-key.js";
import { StudyRegistry } from "../../registry/studies.js";
import { TransferRegistry } from "../../registry/transfers.js";
import { createRoutingDeps, type RoutingDeps } from "../../routing/deps.js";
import type { SessionManager } from "../session.js";
import type { UserDirectory } from "../users.js";
import { HttpError } from "./http-error.js";
import { principals, type Principal, type Principals } from "./principal.js";
import { StudyViews } from "./study-views.js";
import { TransferSnapshot } from "./transfer-snapshot.js";

export interface ApiDeps {
  config: FionaConfig;
  /** Producer connection (fail-fast). */
  redis: Redis;
  flow: FlowProducer;
  users: UserDirectory;
  sessions: SessionManager;
  logger: Logger;
  /** Audit log; created on `redis` when absent. */
  audit?: AuditLog;
}

export interface ApiContext {
  cfg: FionaConfig;
  redis: Redis;
  flow: FlowProducer;
  users: UserDirectory;
  sessions: SessionManager;
  logger: Logger;
  audit: AuditLog;
  paths: SitePaths;
  studies: StudyRegistry;
  transfers: TransferRegistry;
  views: StudyViews;
  /** Manual assignments go through routing's assignStudy (it reserves auto-ID participants), uploads through uploadCouplingList. */
  routing: RoutingDeps;
  snapshot: TransferSnapshot;
  principals: Principals;
  /** The project if it is granted to `p`; a 404 otherwise. */
  grantedProject(p: Principal, name: string): ProjectConfig;
}

export function createContext(deps: ApiDeps): ApiContext {
  const { config: cfg, redis, flow, users, sessions, logger } = deps;
  const paths = new SitePaths(cfg.dataDir);
  const studies = new StudyRegistry(redis, cfg.redis.prefix, {
    retentionDays: cfg.incoming.retentionDays,
    identifierKey: () => identifierKey(cfg),
  });
  const transfers = new TransferRegistry(redis, cfg.redis.prefix);
  return {
    cfg,
    redis,
    flow,
    users,
    sessions,
    logger,
    audit: deps.audit ?? new AuditLog(redis, cfg.redis.prefix, { logger }),
    paths,
    studies,
    transfers,
    views: new StudyViews(paths, studies, cfg.web.showPatientIdentity),
    routing: createRoutingDeps({ cfg, paths, flow, transfers, log: logger }, redis),
    snapshot: new TransferSnapshot(transfers),
    principals: principals(users, sessions, logger),
    grantedProject(p, name) {
      const project = cfg.projects.find((x) => x.name === name);
      if (!project || !users.canUseProject(p.user, name)) throw new HttpError(404, `no project ${name}`);
      return project;
    },
  };
}
