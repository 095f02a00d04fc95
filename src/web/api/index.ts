import express, { type NextFunction, type Request, type Response, type Router } from "express";
import type { FlowProducer } from "bullmq";
import type { Redis } from "ioredis";
import { z } from "zod";
import type { Destination, FionaConfig, ProjectConfig } from "../../config/schema.js";
import { isPathSafeUid } from "../../dicom/uid.js";
import type { Logger } from "../../log.js";
import { SitePaths } from "../../paths.js";
import { AuditLog } from "../../registry/audit.js";
import { StudyRegistry, studyFilterSchema } from "../../registry/studies.js";
import { TransferRegistry, type TransferRecord } from "../../registry/transfers.js";
import { InvalidRequestError, requestId as requestIdOf, validateRequest } from "../../transfer/request.js";
import { assignStudy, createRoutingDeps, uploadCouplingList } from "../../routing/apply.js";
import { parseCouplingCsv } from "../../routing/coupling.js";
import { studySeries, type StartedTransfer } from "../../transfer/start.js";
import type { TransferRequest } from "../../transfer/request.js";
import { checkWrite } from "../csrf.js";
import type { SessionData, SessionManager } from "../session.js";
import { ANONYMOUS, type UserDirectory, type WebUser } from "../users.js";
import { liveStatus, type LiveStatus } from "./live.js";
import { openApiDocument } from "./openapi.js";
import { StudyViews, type StudyTransferRef } from "./studies.js";
import { promises as fs } from "node:fs";
import { registerExportRoutes } from "../../export/web.js";
import { registerInventoryRoutes } from "../../inventory/web.js";
import { wsiUploadRouter } from "../../wsi/web.js";

/**
 * The REST API under /api: everything the Assign page does. See ./openapi.ts for the contract and
 * ../csrf.ts for the write rules. Grants are enforced here on every call: a user never receives a
 * project, participant list, transfer or audit entry of a project that is not granted to them.
 */

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

export type AuthVia = "password" | "basic" | "proxy" | "open";

export interface Principal {
  user: WebUser;
  via: AuthVia;
  /** The cookie session the request was authenticated with (CSRF tokens are tied to it). */
  session?: SessionData;
}

/** Transfer records read for the lists (the registry's newest). */
const MAX_TRANSFERS = 10_000;

/** Request header by which the page marks background polls: they do not extend the session. */
export const POLL_HEADER = "x-fiona-poll";

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const assignBody = z
  .object({
    studyInstanceUid: z.string().min(1).max(64),
    project: z.string().min(1).max(64),
    participant: z.string().min(1).max(64),
    event: z.string().max(64).nullish(),
  })
  .strict();

const loginBody = z
  .object({ user: z.string().min(1).max(256), password: z.string().min(1).max(1024) })
  .strict();

function qs(req: Request, name: string): string | undefined {
  const v = req.query[name];
  const s = Array.isArray(v) ? v[0] : v;
  return typeof s === "string" && s !== "" ? s.slice(0, 256) : undefined;
}

function intQuery(req: Request, name: string, dflt: number, max: number): number {
  const n = Number(qs(req, name));
  return Number.isInteger(n) && n >= 1 ? Math.min(n, max) : dflt;
}

export function destinationOf(cfg: FionaConfig, project: ProjectConfig): Destination | undefined {
  return project.destination ?? cfg.researchPacs;
}

const destLabel = (d: Destination | undefined) => (d ? `${d.aeTitle}@${d.host}:${d.port}` : undefined);

export function createApiRouter(deps: ApiDeps): Router {
  const { config: cfg, redis, flow, users, sessions } = deps;
  const logger = deps.logger;
  const paths = new SitePaths(cfg.dataDir);
  const studies = new StudyRegistry(redis, cfg.redis.prefix, { retentionDays: cfg.quarantine.retentionDays });
  const transfers = new TransferRegistry(redis, cfg.redis.prefix);
  const audit = deps.audit ?? new AuditLog(redis, cfg.redis.prefix, { logger });
  const views = new StudyViews(paths, studies, cfg.web.showPatientIdentity);
  // Manual assignments go through routing's assignStudy (it reserves auto-ID participants), uploads through uploadCouplingList.
  const routing = createRoutingDeps({ cfg, paths, flow, transfers, log: logger }, redis);

  const router = express.Router();
  // Bodies are parsed only once the caller is known (except the login form's).
  const jsonBody = express.json({ limit: "100kb", type: "application/json" });
  const csvBody = express.text({ limit: "5mb", type: "text/csv" });

  // ---- authentication ----

  const secureOf = (req: Request) => users.isSecure(req);

  function setSession(req: Request, res: Response, s: SessionData) {
    res.append("Set-Cookie", sessions.setCookie(s, secureOf(req)));
  }

  /** Who is calling, or an HttpError. Does not open sessions. */
  async function resolve(req: Request): Promise<Principal> {
    const cookieSession = sessions.fromCookieHeader(req.headers.cookie) ?? undefined;
    if (users.mode === "open") {
      return {
        user: ANONYMOUS,
        via: "open",
        ...(cookieSession?.via === "open" ? { session: cookieSession } : {}),
      };
    }
    const authz = req.headers.authorization;
    if (typeof authz === "string" && /^Basic[ \t]/i.test(authz)) {
      const r = await users.checkBasic(authz, req.socket.remoteAddress);
      if (r.ok) return { user: r.user, via: "basic" };
      if (r.reason === "invalid") throw new HttpError(401, "wrong user name or password");
      throw new HttpError(429, "too many sign-in attempts; wait a few minutes");
    }
    const proxyName = users.proxyUserName(req);
    if (proxyName !== undefined) {
      const user = users.get(proxyName);
      if (!user)
        throw new HttpError(403, `user ${proxyName} has no FIONA account; ask the site administrator`);
      const session =
        cookieSession?.via === "proxy" && cookieSession.user === user.name ? cookieSession : undefined;
      return { user, via: "proxy", ...(session ? { session } : {}) };
    }
    if (cookieSession && cookieSession.via === "password") {
      const user = users.get(cookieSession.user);
      if (user && user.passwordHash && sessions.fingerprint(user.passwordHash) === cookieSession.fp) {
        return { user, via: "password", session: cookieSession };
      }
    }
    throw new HttpError(401, "sign in required");
  }

  const principalOf = (res: Response) => res.locals.principal as Principal;

  function sessionBody(p: Principal) {
    const projects = users.visibleProjects(p.user, cfg.projects).map((x) => x.name);
    return {
      user: p.user.name,
      admin: p.user.admin,
      projects,
      via: p.via,
      csrfToken: p.session ? sessions.csrfToken(p.session) : null,
      ...(p.session ? { expiresAt: new Date(sessions.expiresAt(p.session)).toISOString() } : {}),
      sessionMinutes: cfg.web.sessionMinutes,
      showPatientIdentity: cfg.web.showPatientIdentity,
    };
  }

  const loginInfo = () => ({ password: users.passwordLogin, proxy: users.proxyLogin });

  // ---- public routes ----

  router.get("/openapi.json", (_req, res) => {
    res.json(openApiDocument());
  });

  router.get("/session", async (req, res) => {
    let p: Principal;
    try {
      p = await resolve(req);
    } catch (e) {
      if (e instanceof HttpError && e.status === 401) {
        res.status(401).json({ error: e.message, login: loginInfo() });
        return;
      }
      throw e;
    }
    // A site without accounts and a trusted proxy need no login form: open the session here.
    if (!p.session && (p.via === "open" || p.via === "proxy")) {
      p = { ...p, session: sessions.create(p.user.name, p.via) };
      setSession(req, res, p.session!);
    }
    res.json(sessionBody(p));
  });

  router.post("/session", jsonBody, async (req, res) => {
    const check = checkWrite(req, sessions, undefined);
    if (!check.ok) throw new HttpError(403, check.error);
    if (!users.passwordLogin) throw new HttpError(400, "this site has no password accounts");
    const body = loginBody.safeParse(req.body);
    if (!body.success) throw new HttpError(400, "send {user, password}");
    const r = await users.checkPassword(body.data.user, body.data.password, req.socket.remoteAddress);
    if (!r.ok) {
      if (r.reason === "invalid") {
        logger.warn({ ip: req.ip }, "web: sign-in failed");
        await audit
          // An unknown name is not recorded: it may be a password typed into the wrong field.
          .record({
            user: users.get(body.data.user) ? body.data.user : "(unknown user)",
            action: "login-failed",
            ip: req.ip ?? "",
          })
          .catch(() => {});
        throw new HttpError(401, "wrong user name or password");
      }
      throw new HttpError(429, "too many sign-in attempts; wait a few minutes");
    }
    const session = sessions.create(r.user.name, "password", sessions.fingerprint(r.user.passwordHash));
    setSession(req, res, session);
    await audit
      .record({ user: r.user.name, action: "login", via: "password", ip: req.ip ?? "" })
      .catch((e: Error) => logger.error({ err: e.message }, "web: audit write failed"));
    res.json(sessionBody({ user: r.user, via: "password", session }));
  });

  // ---- everything else needs a principal ----

  router.use(async (req: Request, res: Response, next: NextFunction) => {
    if (req.path === "/openapi.json") return next();
    const p = await resolve(req);
    const check = checkWrite(req, sessions, p.session);
    if (!check.ok) throw new HttpError(403, check.error);
    if (p.via === "proxy" && !p.session && req.method !== "GET" && req.method !== "HEAD") {
      throw new HttpError(403, "missing session: load GET /api/session first (CSRF protection)");
    }
    if (p.session && req.headers[POLL_HEADER] === undefined) {
      const touched = sessions.touch(p.session);
      if (touched) setSession(req, res, touched);
    }
    res.locals.principal = p;
    next();
  });
  router.use(jsonBody);

  router.delete("/session", async (req, res) => {
    const p = principalOf(res);
    if (p.session) sessions.revoke(p.session);
    res.append("Set-Cookie", sessions.clearCookie(secureOf(req)));
    await audit.record({ user: p.user.name, action: "logout", via: p.via, ip: req.ip ?? "" }).catch(() => {});
    res.status(204).end();
  });

  // ---- projects ----

  function grantedProject(p: Principal, name: string): ProjectConfig {
    const project = cfg.projects.find((x) => x.name === name);
    if (!project || !users.canUseProject(p.user, name)) throw new HttpError(404, `no project ${name}`);
    return project;
  }

  /**
   * Every transfer record, newest first. Pages poll every few seconds, so one snapshot serves all
   * requests for TRANSFERS_TTL_MS; writes through this API drop it.
   */
  let snapshot: { at: number; list: Promise<TransferRecord[]> } | undefined;
  const TRANSFERS_TTL_MS = 1500;
  async function allTransfers(): Promise<TransferRecord[]> {
    const now = Date.now();
    if (!snapshot || now - snapshot.at > TRANSFERS_TTL_MS) {
      const list = transfers.list(MAX_TRANSFERS);
      snapshot = { at: now, list };
      list.catch(() => (snapshot = undefined));
    }
    return snapshot.list;
  }
  const transfersChanged = () => (snapshot = undefined);

  router.get("/projects", (_req, res) => {
    const p = principalOf(res);
    res.json(
      users.visibleProjects(p.user, cfg.projects).map((x) => {
        const d = destinationOf(cfg, x);
        return {
          name: x.name,
          ...(x.participantPattern ? { participantPattern: x.participantPattern } : {}),
          events: x.events,
          destination: d ? { aeTitle: d.aeTitle, host: d.host, port: d.port } : null,
        };
      }),
    );
  });

  async function participantsOf(project: string) {
    const byId = new Map<
      string,
      { participant: string; transfers: number; events: Set<string>; lastAt: string }
    >();
    for (const t of await allTransfers()) {
      if (t.project !== project) continue;
      const e = byId.get(t.participant) ?? {
        participant: t.participant,
        transfers: 0,
        events: new Set(),
        lastAt: "",
      };
      e.transfers++;
      if (t.event) e.events.add(t.event);
      if (t.updatedAt > e.lastAt) e.lastAt = t.updatedAt;
      byId.set(t.participant, e);
    }
    return [...byId.values()]
      .sort((a, b) => a.participant.localeCompare(b.participant, undefined, { numeric: true }))
      .map((e) => ({ ...e, events: [...e.events].sort() }));
  }

  router.get("/projects/:project/participants", async (req, res) => {
    const project = grantedProject(principalOf(res), String(req.params.project));
    res.json(await participantsOf(project.name));
  });

  function participantProblem(project: ProjectConfig, participant: string): string | undefined {
    try {
      validateRequest({ studyInstanceUid: "1.2", project: project.name, participant, requestedBy: "check" }, [
        project,
      ]);
      return undefined;
    } catch (e) {
      if (e instanceof InvalidRequestError) return e.message;
      throw e;
    }
  }

  router.get("/projects/:project/participants/check", async (req, res) => {
    const project = grantedProject(principalOf(res), String(req.params.project));
    const participant = qs(req, "participant") ?? "";
    const problem = participant ? participantProblem(project, participant) : "enter a participant id";
    const exists = (await allTransfers()).some(
      (t) => t.project === project.name && t.participant === participant,
    );
    res.json({ participant, valid: !problem, ...(problem ? { message: problem } : {}), exists });
  });

  // ---- studies ----

  function visibleRefs(p: Principal, list: TransferRecord[]): Map<string, StudyTransferRef[]> {
    const map = new Map<string, StudyTransferRef[]>();
    for (const t of list) {
      if (!users.canUseProject(p.user, t.project)) continue;
      const refs = map.get(t.studyInstanceUid) ?? [];
      refs.push({
        requestId: t.requestId,
        project: t.project,
        participant: t.participant,
        ...(t.event ? { event: t.event } : {}),
        status: t.status,
      });
      map.set(t.studyInstanceUid, refs);
    }
    return map;
  }

  router.get("/studies", async (req, res) => {
    const p = principalOf(res);
    const refs = visibleRefs(p, await allTransfers());
    const assigned = qs(req, "assigned");
    const fields = studyFilterSchema.safeParse({
      studyDateFrom: qs(req, "from") ?? qs(req, "studyDateFrom"),
      studyDateTo: qs(req, "to") ?? qs(req, "studyDateTo"),
      seenFrom: qs(req, "seenFrom"),
      seenTo: qs(req, "seenTo"),
      accession: qs(req, "accession"),
      description: qs(req, "description"),
      aeTitle: qs(req, "ae") ?? qs(req, "aeTitle"),
      status: qs(req, "status"),
      modality: qs(req, "modality"),
    });
    if (!fields.success) {
      const i = fields.error.issues[0];
      throw new HttpError(400, `invalid filter ${i?.path.join(".") ?? ""}: ${i?.message ?? ""}`);
    }
    let list;
    try {
      list = await views.list(
        {
          ...fields.data,
          ...(qs(req, "q") ? { q: qs(req, "q") } : {}),
          ...(assigned === "assigned" || assigned === "unassigned" ? { assigned } : {}),
          limit: intQuery(req, "limit", 500, 5000),
        },
        (uid) => refs.get(uid) ?? [],
      );
    } catch (e) {
      if (e instanceof RangeError) throw new HttpError(400, e.message);
      throw e;
    }
    res.json(list);
  });

  async function studyDetail(p: Principal, uid: string) {
    const entry = isPathSafeUid(uid) ? await studies.get(uid) : undefined;
    if (!entry) throw new HttpError(404, "unknown study");
    const refs = visibleRefs(p, await transfers.forStudy(uid));
    return views.detail(entry, refs.get(uid) ?? []);
  }

  router.get("/studies/:uid", async (req, res) => {
    res.json(await studyDetail(principalOf(res), String(req.params.uid)));
  });

  // ---- transfers ----

  const studyCache = new Map<
    string,
    { studyDate?: string; studyDescription?: string; accessionNumber?: string }
  >();

  async function transferView(t: TransferRecord, live?: LiveStatus) {
    let study = studyCache.get(t.studyInstanceUid);
    if (!study) {
      const entry = await studies.get(t.studyInstanceUid);
      const v = entry ? await views.view(entry, []) : undefined;
      study = {
        ...(v?.studyDate ? { studyDate: v.studyDate } : {}),
        ...(v?.studyDescription ? { studyDescription: v.studyDescription } : {}),
        ...(v?.accessionNumber ? { accessionNumber: v.accessionNumber } : {}),
      };
      if (entry?.status === "arrived") studyCache.set(t.studyInstanceUid, study);
      if (studyCache.size > 5000) studyCache.delete(studyCache.keys().next().value!);
    }
    const project = cfg.projects.find((x) => x.name === t.project);
    const dest = project ? destLabel(destinationOf(cfg, project)) : undefined;
    return {
      ...t,
      ...(dest ? { destination: dest } : {}),
      study,
      live: live ?? (await liveStatus(flow, t)),
    };
  }

  async function visibleTransfer(p: Principal, id: string): Promise<TransferRecord> {
    const t = /^[0-9a-f]{8,64}$/.test(id) ? await transfers.get(id) : undefined;
    if (!t || !users.canUseProject(p.user, t.project)) throw new HttpError(404, "unknown transfer");
    return t;
  }

  router.get("/transfers", async (req, res) => {
    const p = principalOf(res);
    const project = qs(req, "project");
    const study = qs(req, "study");
    const limit = intQuery(req, "limit", 100, 1000);
    const list = (await allTransfers())
      .filter((t) => users.canUseProject(p.user, t.project))
      .filter((t) => !project || t.project === project)
      .filter((t) => !study || t.studyInstanceUid === study)
      .slice(0, limit);
    res.json(await Promise.all(list.map((t) => transferView(t))));
  });

  async function preview(
    p: Principal,
    r: { study: string; project: string; participant: string; event?: string },
  ) {
    const project = cfg.projects.find((x) => x.name === r.project);
    if (!project || !users.canUseProject(p.user, r.project)) {
      throw new HttpError(403, `project ${r.project} is not granted to ${p.user.name}`);
    }
    const request = {
      studyInstanceUid: r.study,
      project: r.project,
      participant: r.participant,
      ...(r.event ? { event: r.event } : {}),
      requestedBy: p.user.name,
    };
    try {
      validateRequest(request, cfg.projects);
    } catch (e) {
      if (e instanceof InvalidRequestError) throw new HttpError(400, e.message);
      throw e;
    }
    const destination = destinationOf(cfg, project);
    if (!destination)
      throw new HttpError(
        400,
        `project ${project.name} has no destination and no researchPacs is configured`,
      );
    const detail = await studyDetail(p, r.study);
    const onDisk = await studySeries(paths, r.study);
    if (onDisk.length === 0) throw new HttpError(400, "no images of this study are on disk");
    const counts = await Promise.all(
      onDisk.map(async (s) => (await fs.readdir(paths.rawSeriesDir(r.study, s)).catch(() => [])).length),
    );
    const id = requestIdOf(request);
    const existing = await transfers.get(id);
    const all = await allTransfers();
    const newParticipant = !all.some((t) => t.project === project.name && t.participant === r.participant);
    const warnings: string[] = [];
    if (detail.status === "receiving")
      warnings.push("Images of this study are still arriving; later images follow automatically.");
    if (existing) {
      warnings.push(
        `This study was already assigned to ${project.name} / ${r.participant}${r.event ? ` / ${r.event}` : ""}; only images the research PACS has not accepted yet will be sent.`,
      );
    }
    const others = all.filter(
      (t) => t.studyInstanceUid === r.study && t.project === project.name && t.participant !== r.participant,
    );
    if (others.length) {
      warnings.push(
        `This study is already assigned in ${project.name} to participant ${[...new Set(others.map((t) => t.participant))].join(", ")}.`,
      );
    }
    if (newParticipant) warnings.push(`${r.participant} is a new participant in ${project.name}.`);
    const view = {
      requestId: id,
      study: detail,
      project: project.name,
      participant: r.participant,
      ...(r.event ? { event: r.event } : {}),
      destination: { aeTitle: destination.aeTitle, host: destination.host, port: destination.port },
      seriesCount: onDisk.length,
      fileCount: counts.reduce((a, b) => a + b, 0),
      newParticipant,
      existing: existing ? await transferView(existing) : null,
      warnings,
    };
    return { view, request };
  }

  router.get("/transfers/preview", async (req, res) => {
    const p = principalOf(res);
    const study = qs(req, "study");
    const project = qs(req, "project");
    const participant = qs(req, "participant");
    if (!study || !project || !participant)
      throw new HttpError(400, "study, project and participant are required");
    const event = qs(req, "event");
    const { view } = await preview(p, {
      study,
      project,
      participant,
      ...(event ? { event } : {}),
    });
    res.json(view);
  });

  async function run(
    req: Request,
    p: Principal,
    request: TransferRequest,
    action: "assign" | "retry",
  ): Promise<StartedTransfer> {
    let started: StartedTransfer;
    try {
      started = await assignStudy(routing, request);
      transfersChanged();
    } catch (e) {
      if (e instanceof InvalidRequestError) throw new HttpError(400, e.message);
      throw e;
    }
    await audit
      .record({
        user: p.user.name,
        action,
        via: p.via,
        ip: req.ip ?? "",
        study: request.studyInstanceUid,
        project: request.project,
        participant: request.participant,
        ...(request.event ? { event: request.event } : {}),
        requestId: started.requestId,
        run: started.run,
      })
      .catch((e: Error) =>
        logger.error({ err: e.message, requestId: started.requestId }, "web: audit write failed"),
      );
    return started;
  }

  async function refuseIfRunning(id: string) {
    const t = await transfers.get(id);
    if (t && !(await liveStatus(flow, t)).retryable) {
      throw new HttpError(409, "this transfer is running; wait for it to finish before sending it again");
    }
  }

  router.post("/transfers", async (req, res) => {
    const p = principalOf(res);
    const body = assignBody.safeParse(req.body);
    if (!body.success) {
      throw new HttpError(
        400,
        `send {studyInstanceUid, project, participant, event?}: ${body.error.issues[0]?.message ?? ""}`,
      );
    }
    const b = body.data;
    const { request } = await preview(p, {
      study: b.studyInstanceUid,
      project: b.project,
      participant: b.participant,
      ...(b.event ? { event: b.event } : {}),
    });
    await refuseIfRunning(requestIdOf(request));
    const started = await run(req, p, request, "assign");
    res.status(202).json(started);
  });

  router.get("/transfers/:id", async (req, res) => {
    const t = await visibleTransfer(principalOf(res), String(req.params.id));
    res.json(await transferView(t));
  });

  router.post("/transfers/:id/retry", async (req, res) => {
    const p = principalOf(res);
    const t = await visibleTransfer(p, String(req.params.id));
    await refuseIfRunning(t.requestId);
    const started = await run(
      req,
      p,
      {
        studyInstanceUid: t.studyInstanceUid,
        project: t.project,
        participant: t.participant,
        ...(t.event ? { event: t.event } : {}),
        requestedBy: p.user.name,
      },
      "retry",
    );
    res.status(202).json(started);
  });

  // ---- coupling list ----

  router.post("/coupling", csvBody, async (req, res) => {
    const p = principalOf(res);
    if (typeof req.body !== "string" || req.body.trim() === "") {
      throw new HttpError(400, "send the coupling list as text/csv");
    }
    const csv = req.body;
    const dryRun = ["1", "true", "yes"].includes((qs(req, "dryRun") ?? "").toLowerCase());
    // Every row must name a project granted to the user (checked before anything is stored or matched).
    const parsed = parseCouplingCsv(csv, cfg.projects);
    const denied = [...new Set(parsed.rows.map((r) => r.project))].filter(
      (x) => !users.canUseProject(p.user, x),
    );
    if (denied.length)
      throw new HttpError(403, `not granted to ${p.user.name}: project ${denied.join(", ")}`);
    const result = await uploadCouplingList(routing, csv, p.user.name, { dryRun });
    if (!dryRun) transfersChanged();
    if (result.errors.length) {
      res.status(400).json({
        error: `the list has ${result.errors.length} problem${result.errors.length === 1 ? "" : "s"}; nothing was stored`,
        errors: result.errors,
      });
      return;
    }
    const matches = await Promise.all(
      result.matchedNow.map(async (m) => {
        const entry = await studies.get(m.studyInstanceUid);
        const v = entry ? await views.view(entry, []) : undefined;
        return {
          ...m,
          ...(v?.studyDate ? { studyDate: v.studyDate } : {}),
          ...(v?.studyDescription ? { studyDescription: v.studyDescription } : {}),
          ...(v?.accessionNumber ? { accessionNumber: v.accessionNumber } : {}),
        };
      }),
    );
    if (!dryRun) {
      const started = result.matchedNow.filter((m) => m.status === "started");
      const record = async () => {
        await audit.record({
          user: p.user.name,
          action: "coupling-upload",
          via: p.via,
          ip: req.ip ?? "",
          detail: `${result.rows.length} rows, ${result.stored} stored, ${started.length} transfers started`,
        });
        for (const m of started) {
          await audit.record({
            user: p.user.name,
            action: "assign",
            via: p.via,
            ip: req.ip ?? "",
            study: m.studyInstanceUid,
            project: m.project,
            participant: m.participant,
            ...(m.event ? { event: m.event } : {}),
            requestId: m.requestId,
            ...(m.run !== undefined ? { run: m.run } : {}),
            detail: "coupling list",
          });
        }
      };
      await record().catch((e: Error) => logger.error({ err: e.message }, "web: audit write failed"));
    }
    res.json({
      dryRun,
      rows: result.rows.map((r) => ({
        line: r.line,
        ...(r.accessionNumber ? { accessionNumber: r.accessionNumber } : {}),
        ...(r.studyInstanceUid ? { studyInstanceUid: r.studyInstanceUid } : {}),
        project: r.project,
        participant: r.participant,
        ...(r.event ? { event: r.event } : {}),
      })),
      stored: result.stored,
      matches,
    });
  });

  // ---- audit ----

  router.get("/audit", async (req, res) => {
    const p = principalOf(res);
    const before = qs(req, "before");
    const entries = await audit.list({
      limit: intQuery(req, "limit", 100, 1000),
      ...(before && /^\d+-\d+$/.test(before) ? { before } : {}),
      ...(p.user.admin
        ? {}
        : { projects: new Set(users.visibleProjects(p.user, cfg.projects).map((x) => x.name)) }),
    });
    res.json(entries);
  });

  // ---- exports and NoAssign (src/export/web.ts) ----

  registerExportRoutes(router, {
    cfg,
    redis,
    logger,
    caller: (res) => {
      const p = principalOf(res);
      return { user: p.user.name, canUse: (project) => users.canUseProject(p.user, project) };
    },
    httpError: (status, message) => new HttpError(status, message),
    audit: async (req, res, e) => {
      const p = principalOf(res);
      await audit
        .record({ user: p.user.name, via: p.via, ip: req.ip ?? "", ...e })
        .catch((err: Error) => logger.error({ err: err.message }, "web: audit write failed"));
    },
  });

  registerInventoryRoutes(router, {
    cfg,
    grantedProject: (res, name) => grantedProject(principalOf(res), name).name,
    httpError: (status, message) => new HttpError(status, message),
  });

  const canUse = (res: Response, project: string) => users.canUseProject(principalOf(res).user, project);
  router.use("/wsi", wsiUploadRouter({ cfg, redis, logger, canUse }));

  // ---- errors ----

  router.use((_req: Request, res: Response) => {
    res.status(404).json({ error: "not found" });
  });

  router.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    if (err instanceof HttpError) {
      if (err.status === 401 && req.headers.cookie?.includes("fiona_session=")) {
        res.append("Set-Cookie", sessions.clearCookie(secureOf(req)));
      }
      res.status(err.status).json({ error: err.message });
      return;
    }
    const status =
      typeof err === "object" && err !== null && "status" in err && typeof err.status === "number"
        ? err.status
        : 500;
    if (status >= 400 && status < 500) {
      res.status(status).json({ error: status === 413 ? "request too large" : "bad request" });
      return;
    }
    logger.error(
      { err: err instanceof Error ? err.message : String(err), path: req.path },
      "web: api request failed",
    );
    res.status(500).json({ error: "internal error" });
  });

  return router;
}
