/**
 * Who is calling: a basic-auth account, a trusted proxy's user or a password session; nobody else.
 * `authenticate` admits every API request past it only with a principal, after the CSRF rules
 * (../csrf.ts) and, for writes, with a role above viewer. The other doors of the web server resolve
 * principals the same way (../doors.ts, ../board/guard.ts).
 */
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { Logger } from "../../log.js";
import { checkWrite, isWrite } from "../csrf.js";
import type { SessionData, SessionManager } from "../session.js";
import type { UserDirectory, WebUser } from "../users.js";
import { HttpError } from "./http-error.js";

export type AuthVia = "password" | "basic" | "proxy";

export interface Principal {
  user: WebUser;
  via: AuthVia;
  /** The cookie session the request was authenticated with (CSRF tokens are tied to it). */
  session?: SessionData;
}

/** Request header by which the page marks background polls: they do not extend the session. */
const POLL_HEADER = "x-fiona-poll";

const FAILURE_LOG_INTERVAL_MS = 10_000;

export const principalOf = (res: Response) => res.locals.principal as Principal;

export interface Principals {
  /** Who is calling, or an HttpError. Does not open sessions. */
  resolve(req: Request): Promise<Principal>;
  /** Middleware: sets the principal of the request, or refuses it. */
  authenticate: RequestHandler;
  setSession(req: Request, res: Response, s: SessionData): void;
  secureOf(req: Request): boolean;
}

export function principals(users: UserDirectory, sessions: SessionManager, logger?: Logger): Principals {
  const secureOf = (req: Request) => users.isSecure(req);
  let failures = 0;
  let lastFailureLog = 0;

  /** Wrong basic-auth credentials, logged at most every 10 s: address and path, never the header. */
  function noteBasicFailure(req: Request) {
    failures++;
    const now = Date.now();
    if (logger && now - lastFailureLog >= FAILURE_LOG_INTERVAL_MS) {
      logger.warn({ ip: req.ip, path: req.path, failures }, "web: basic auth failed");
      lastFailureLog = now;
      failures = 0;
    }
  }

  function setSession(req: Request, res: Response, s: SessionData) {
    res.append("Set-Cookie", sessions.setCookie(s, secureOf(req)));
  }

  async function resolve(req: Request): Promise<Principal> {
    const cookieSession = sessions.fromCookieHeader(req.headers.cookie) ?? undefined;
    const authz = req.headers.authorization;
    if (typeof authz === "string" && /^Basic[ \t]/i.test(authz)) {
      const r = await users.checkBasic(authz, req.socket.remoteAddress);
      if (r.ok) return { user: r.user, via: "basic" };
      if (r.reason === "invalid") {
        noteBasicFailure(req);
        throw new HttpError(401, "wrong user name or password");
      }
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

  async function authenticate(req: Request, res: Response, next: NextFunction) {
    if (req.path === "/openapi.json") return next();
    const p = await resolve(req);
    const check = checkWrite(req, sessions, p.session);
    if (!check.ok) throw new HttpError(403, check.error);
    if (p.via === "proxy" && !p.session && isWrite(req)) {
      throw new HttpError(403, "missing session: load GET /api/session first (CSRF protection)");
    }
    // Signing out is the one write a viewer makes.
    if (isWrite(req) && p.user.role === "viewer" && req.path !== "/session") {
      throw new HttpError(403, "viewers cannot change anything");
    }
    if (p.session && req.headers[POLL_HEADER] === undefined) {
      const touched = sessions.touch(p.session);
      if (touched) setSession(req, res, touched);
    }
    res.locals.principal = p;
    next();
  }

  return { resolve, authenticate, setSession, secureOf };
}
