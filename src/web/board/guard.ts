/**
 * What a signed-in user may do in Bull Board. Everyone may look; each state-changing call is checked
 * against the caller's role (./actions.ts) and, for an operator's retry or promote, against the
 * project the job names (job data `project`) when it names one. Writes follow the CSRF rules of
 * ../csrf.ts; browsers get their token through the XSRF-TOKEN cookie (./xsrf-cookie.ts). Every
 * state-changing call, allowed or refused, is audited with who, what (action, queue, job id) and the
 * HTTP status it was answered with (499 when the client went away first).
 */
import type { Queue } from "bullmq";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { Logger } from "../../log.js";
import type { AuditInput, AuditLog } from "../../registry/audit.js";
import { principalOf, type Principals } from "../api/principal.js";
import { checkWrite, isWrite } from "../csrf.js";
import { parseCookies, type SessionManager } from "../session.js";
import { hasRole } from "../roles.js";
import type { UserDirectory } from "../users.js";
import { boardAction, type BoardAction } from "./actions.js";
import { BOARD_CSRF_COOKIE, boardCsrfCookie } from "./xsrf-cookie.js";

export interface BoardGuardDeps {
  principals: Principals;
  sessions: SessionManager;
  users: UserDirectory;
  audit: AuditLog;
  queues: ReadonlyMap<string, Queue>;
  logger: Logger;
}

/** Status recorded for an action whose client disconnected before the answer was sent. */
const CLIENT_GONE = 499;

/** res.locals key under which a later handler adds to the audit entry (what a retry started). */
export const BOARD_AUDIT = "boardAudit";

async function jobProject(queue: Queue | undefined, jobId: string | undefined): Promise<string | undefined> {
  if (!queue || !jobId) return undefined;
  const job = await queue.getJob(jobId);
  const project: unknown =
    job?.data && typeof job.data === "object" ? (job.data as Record<string, unknown>).project : undefined;
  return typeof project === "string" ? project : undefined;
}

/** Runs after ../doors.ts signedIn, which set the principal. */
export function boardGuard(deps: BoardGuardDeps): RequestHandler {
  const { principals, sessions, users, audit, queues, logger } = deps;

  function auditOnClose(req: Request, res: Response, action: BoardAction, project: () => string | undefined) {
    const p = principalOf(res);
    res.once("close", () => {
      const { role: _role, action: name, ...what } = action;
      const projectName = project();
      audit
        .record({
          user: p.user.name,
          via: p.via,
          ip: req.ip ?? "",
          action: `queues:${name}`,
          ...what,
          ...(projectName ? { project: projectName } : {}),
          ...(res.locals[BOARD_AUDIT] as Partial<AuditInput> | undefined),
          status: res.writableFinished ? res.statusCode : CLIENT_GONE,
        })
        .catch((e: Error) => logger.error({ err: e.message }, "web: audit write failed"));
    });
  }

  return async (req: Request, res: Response, next: NextFunction) => {
    const p = principalOf(res);
    const write = isWrite(req);
    const deny = (error: string) => res.status(403).json({ error });
    let project: string | undefined;
    const action = write ? boardAction(req.method, req.path) : undefined;
    if (action) auditOnClose(req, res, action, () => project);

    const check = checkWrite(req, sessions, p.session);
    if (!check.ok) return deny(check.error);
    let session = p.session;
    if (p.via === "proxy" && !session) {
      if (write) return deny("missing session: load the dashboard first (CSRF protection)");
      session = sessions.create(p.user.name, "proxy");
      principals.setSession(req, res, session);
    }
    if (action) {
      if (!hasRole(p.user.role, action.role)) return deny(`${action.action} needs the ${action.role} role`);
      project = await jobProject(action.queue ? queues.get(action.queue) : undefined, action.jobId);
      if (project && !users.canUseProject(p.user, project))
        return deny(`project ${project} is not granted to you`);
    }
    if (session) {
      // The UI's own polls (GET of its API) do not count as activity, as the Assign page's do not.
      const touched = write || !req.path.startsWith("/api/") ? sessions.touch(session) : undefined;
      if (touched) principals.setSession(req, res, touched);
      const token = sessions.csrfToken(session);
      if (parseCookies(req.headers.cookie).get(BOARD_CSRF_COOKIE) !== token) {
        res.append("Set-Cookie", boardCsrfCookie(token, principals.secureOf(req)));
      }
    }
    next();
  };
}
