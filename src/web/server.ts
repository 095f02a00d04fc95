import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { FlowProducer, type Queue } from "bullmq";
import express, { type NextFunction, type Request, type Response } from "express";
import type { Redis } from "ioredis";
import type { FionaConfig } from "../config/schema.js";
import { log as defaultLog, type Logger } from "../log.js";
import { SitePaths } from "../paths.js";
import { QuarantineStore } from "../quarantine/store.js";
import { AuditLog } from "../registry/audit.js";
import { TransferRegistry } from "../registry/transfers.js";
import { createRoutingDeps } from "../routing/deps.js";
import { workerLiveness } from "../queues/liveness.js";
import { createRedis } from "../queues/connection.js";
import { reportRedisErrors } from "../queues/redis-errors.js";
import { readRedcapAlert } from "../redcap/alert.js";
import { requestIds } from "../metrics/request-id.js";
import { metricsHandler } from "../metrics/web.js";
import { countQueues } from "../queues/counts.js";
import { ALL_QUEUES, createQueue, type QueueName } from "../queues/index.js";
import { createApiRouter } from "./api/index.js";
import { principals as createPrincipals } from "./api/principal.js";
import { ASSIGN_PATH, assignPageRouter } from "./assign/index.js";
import { boardGuard } from "./board/guard.js";
import { boardApp } from "./board/index.js";
import { BOARD_PATH } from "./board/path.js";
import { boardTransferRetries } from "./board/transfer-retry.js";
import { bearerOr, signedIn } from "./doors.js";
import { ensureUsers } from "./initial-admin.js";
import { urlOfAddress } from "./listen-address.js";
import { metricsToken } from "./metrics-token.js";
import { SessionManager, sessionKey } from "./session.js";
import { UserDirectory } from "./users.js";
import { ATTACH_PATH, ATTACH_STATIC_DIR } from "../wsi/page.js";

/**
 * One readiness check. `detail` is any JSON-serialisable value (a string, worker states, counts) and
 * is shown to unauthenticated callers of /readyz: no secrets, no patient data.
 */
export interface ReadinessCheck {
  ok: boolean;
  detail?: unknown;
}

/** What the optional readiness callback reports, e.g. { ready, checks: { "worker:ingest": {ok, detail: "running"}, receiver: {...} } }. */
export interface ReadinessReport {
  ready: boolean;
  checks?: Record<string, ReadinessCheck>;
}

export interface StartWebOptions {
  config: FionaConfig;
  /**
   * A producer-style ioredis connection (createRedis(config.redis, "producer")): fail-fast, so /readyz and the
   * dashboard answer at once when Redis is gone. Created from config.redis when omitted; a given
   * connection is left open by close().
   */
  connection?: Redis;
  readiness?: () => Promise<ReadinessReport>;
  logger?: Logger;
  /** Override config.httpPort (0 picks a free port; the config schema only accepts 1–65535). */
  port?: number;
  /** Override config.httpHost. */
  host?: string;
  /** Bull Board read-only mode: every action answers 405 and the buttons are hidden. Default false. */
  readOnly?: boolean;
  /** How long /readyz waits for PING and for the readiness callback. Default 2000 ms. */
  readinessTimeoutMs?: number;
}

export interface WebHandle {
  url: string;
  port: number;
  close(): Promise<void>;
}

const DEFAULT_READINESS_TIMEOUT_MS = 2000;
const CLOSE_GRACE_MS = 2000;

function timeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("timeout")), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const MAX_DETAIL_CHARS = 8192;

/** A readiness detail as plain JSON (no functions, no cycles, bounded size); undefined when absent. */
function jsonSafe(detail: unknown): unknown {
  if (detail === undefined) return undefined;
  try {
    const text = JSON.stringify(detail);
    if (text === undefined) return undefined;
    return text.length > MAX_DETAIL_CHARS
      ? `${text.slice(0, MAX_DETAIL_CHARS)}…`
      : (JSON.parse(text) as unknown);
  } catch {
    return "unserialisable detail";
  }
}

/** Resolves once `connection` is ready, has failed its current attempt, or `ms` passed; never rejects. */
function settleConnection(connection: Redis, ms: number): Promise<void> {
  // "wait" is a lazyConnect client nobody has used yet: it will connect on the first command.
  if (!["connecting", "connect", "reconnecting"].includes(connection.status)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      connection.off("ready", done);
      connection.off("error", done);
      connection.off("end", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    connection.once("ready", done);
    connection.once("error", done);
    connection.once("end", done);
  });
}

/** Headers for every response. Bull Board's UI needs its own scripts, so only framing is restricted by CSP. */
function securityHeaders(req: Request, res: Response, next: NextFunction) {
  res.setHeader("X-Content-Type-Options", "nosniff");
  res.setHeader("X-Frame-Options", "DENY");
  res.setHeader("Content-Security-Policy", "frame-ancestors 'none'");
  res.setHeader("Referrer-Policy", "no-referrer");
  res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
  // Everything is live state except the dashboard's static bundle.
  if (!req.path.startsWith(`${BOARD_PATH}/static/`)) {
    res.setHeader("Cache-Control", "no-store");
  }
  next();
}

export async function startWeb(opts: StartWebOptions): Promise<WebHandle> {
  const { config } = opts;
  const logger = (opts.logger ?? defaultLog).child({ component: "web" });
  const readinessTimeout = opts.readinessTimeoutMs ?? DEFAULT_READINESS_TIMEOUT_MS;
  // Before anything connects: a site has users (the first start creates its administrator).
  ensureUsers(config, opts.host ?? config.httpHost, logger);
  const scrapeToken = metricsToken(config.web);
  const ownConnection = !opts.connection;
  // Its connection errors are logged, rate-limited, by createRedis (src/queues/redis-errors.ts).
  const connection = opts.connection ?? createRedis(config.redis, "producer");

  // Let the first connection attempt finish, so /readyz does not report a Redis that is merely still connecting.
  await settleConnection(connection, readinessTimeout);

  const queues = new Map<QueueName, Queue>();
  for (const name of ALL_QUEUES) {
    queues.set(name, createQueue(name, connection, config.redis.prefix) as Queue);
  }

  // The Assign page and its REST API: accounts, sessions, and a flow producer to start transfers.
  const flow = new FlowProducer({ connection, prefix: config.redis.prefix });
  reportRedisErrors(flow, "flow-producer");
  // One set of users and sessions for every door: pages, API, Bull Board, /metrics.
  const users = new UserDirectory(config, { logger });
  const sessions = new SessionManager({
    key: sessionKey(config.secret),
    idleMinutes: config.web.sessionMinutes,
  });
  const principals = createPrincipals(users, sessions, logger);
  const audit = new AuditLog(connection, config.redis.prefix, { logger });
  const signedInUser = signedIn(principals);
  const unknownGrants = users.unknownGrants(config.projects);
  if (unknownGrants.length) {
    logger.warn({ projects: unknownGrants }, "web: web.users grants name projects that are not configured");
  }
  if (config.web.basicAuth) {
    logger.warn(
      { user: config.web.basicAuth.user },
      "web: web.basicAuth is deprecated: it is an admin user like any other; move it to web.users (role admin)",
    );
  }

  const app = express();
  app.disable("x-powered-by");
  app.disable("etag");
  app.use(securityHeaders);
  app.use(requestIds(logger));

  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });

  app.get("/readyz", async (_req, res) => {
    const checks: Record<string, ReadinessCheck> = {};
    let ready = true;
    const [redis, extra] = await Promise.allSettled([
      timeout(connection.ping(), readinessTimeout),
      opts.readiness ? timeout(opts.readiness(), readinessTimeout) : Promise.resolve(undefined),
    ]);
    if (redis.status === "fulfilled" && redis.value === "PONG") {
      checks.redis = { ok: true };
    } else {
      ready = false;
      const reason = redis.status === "rejected" ? redis.reason : undefined;
      const timedOut = reason instanceof Error && reason.message === "timeout";
      checks.redis = { ok: false, detail: timedOut ? "no answer to PING in time" : "not reachable" };
      logger.debug(
        { err: reason instanceof Error ? reason.message : String(reason) },
        "web: readyz redis check failed",
      );
    }
    if (opts.readiness) {
      if (extra.status === "fulfilled" && extra.value) {
        for (const [name, check] of Object.entries(extra.value.checks ?? {})) {
          if (name === "redis") continue;
          const detail = jsonSafe(check?.detail);
          checks[name] = { ok: check?.ok === true, ...(detail !== undefined ? { detail } : {}) };
        }
        if (extra.value.ready !== true) ready = false;
      } else {
        ready = false;
        checks.readiness = { ok: false, detail: "readiness check failed or timed out" };
        const reason = extra.status === "rejected" ? extra.reason : undefined;
        logger.warn(
          { err: reason instanceof Error ? reason.message : String(reason) },
          "web: readiness callback failed",
        );
      }
    }
    // A queue with waiting jobs and no live worker, or whose oldest job waits too long (src/queues/liveness.ts).
    if (redis.status === "fulfilled") {
      const maxWaitingMs = config.schedules.maxWaitingSeconds * 1000;
      const live = await timeout(workerLiveness(queues.values(), { maxWaitingMs }), readinessTimeout).catch(
        () => undefined,
      );
      const stalled = live?.filter((q) => q.stalled) ?? [];
      checks.queues = live
        ? { ok: stalled.length === 0, ...(stalled.length ? { detail: stalled } : {}) }
        : { ok: false, detail: "queue liveness not read in time" };
      if (!checks.queues.ok) ready = false;
    }
    // The REDCap alert (IP ban): reported as a degraded check (ok: false) but readiness stays as it is,
    // since the REDCap stages are paused on their own while receiving, routing and transfers carry on.
    if (config.redcap && redis.status === "fulfilled") {
      const alert = await timeout(readRedcapAlert(connection, config.redis.prefix), readinessTimeout).catch(
        () => undefined,
      );
      checks.redcap = alert
        ? {
            ok: false,
            detail: {
              status: "degraded",
              since: alert.at,
              reason:
                "REDCap refused this host (IP ban?): REDCap stages paused; after the ban is lifted run fiona redcap clear-alert",
            },
          }
        : { ok: true };
    }
    res.status(ready ? 200 : 503).json({ status: ready ? "ready" : "not ready", checks });
  });

  app.get("/api/status", signedInUser, async (_req, res) => {
    if (connection.status !== "ready") {
      // A producer connection fails fast; BullMQ would otherwise wait for Redis until the timeout.
      res.status(503).json({ error: "queue counts unavailable: redis not connected" });
      return;
    }
    try {
      const counts = await countQueues(queues);
      res.json({ queues: counts });
    } catch (err) {
      logger.warn({ err: err instanceof Error ? err.message : String(err) }, "web: /api/status failed");
      res.status(503).json({ error: "queue counts unavailable" });
    }
  });

  // Counts only, no patient data; for any signed-in user, or Prometheus with the bearer token.
  app.get("/metrics", bearerOr(scrapeToken, signedInUser), metricsHandler(config, connection, logger));

  app.use("/api", createApiRouter({ config, redis: connection, flow, users, sessions, logger, audit }));

  app.get("/", (_req, res) => {
    res.redirect(302, `${ASSIGN_PATH}/`);
  });
  app.use(ASSIGN_PATH, assignPageRouter());
  app.use(ATTACH_PATH, assignPageRouter(ATTACH_STATIC_DIR));

  app.use(
    BOARD_PATH,
    signedIn(principals, { signInPage: true }),
    boardGuard({ principals, sessions, users, audit, queues, logger }),
    ...(opts.readOnly
      ? []
      : [
          boardTransferRetries({
            queues,
            routing: createRoutingDeps(
              {
                cfg: config,
                paths: new SitePaths(config.dataDir),
                flow,
                transfers: new TransferRegistry(connection, config.redis.prefix),
                log: logger,
              },
              connection,
            ),
            quarantine: new QuarantineStore(connection, config.redis.prefix, logger),
            logger,
          }),
        ]),
    boardApp(queues.values(), opts.readOnly ?? false),
  );

  app.use((_req, res) => {
    res.status(404).json({ error: "not found" });
  });
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    logger.error({ err: err instanceof Error ? err.message : String(err) }, "web: request failed");
    if (res.headersSent) return next(err);
    const status =
      typeof err === "object" &&
      err !== null &&
      "status" in err &&
      typeof err.status === "number" &&
      err.status >= 400 &&
      err.status < 500
        ? err.status
        : 500;
    res.status(status).json({ error: status === 500 ? "internal error" : "bad request" });
  });

  const server: Server = createServer(app);
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });

  const host = opts.host ?? config.httpHost;
  const port = opts.port ?? config.httpPort;
  const cleanup = async () => {
    await Promise.allSettled([...[...queues.values()].map((q) => q.close()), flow.close()]);
    if (ownConnection) connection.disconnect();
  };
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    await cleanup();
    throw err;
  }
  server.on("error", (err) => logger.error({ err: err.message }, "web: server error"));

  const bound = server.address() as AddressInfo;
  const actualPort = bound.port;
  const url = urlOfAddress(bound);
  logger.info({ url, users: users.size, readOnly: opts.readOnly ?? false }, "web: listening");

  let closing: Promise<void> | undefined;
  return {
    url,
    port: actualPort,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const grace = setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, CLOSE_GRACE_MS);
        await closed;
        clearTimeout(grace);
        await cleanup();
        logger.info("web: closed");
      })();
      return closing;
    },
  };
}
