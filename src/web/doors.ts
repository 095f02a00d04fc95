/**
 * The doors of the web server besides /api (which has its own, ./api/principal.ts): Bull Board, /metrics
 * and /api/status admit signed-in users only (any role; Bull Board's actions are checked further in
 * ./board/guard.ts), with the same users and sessions as the Assign page: HTTP basic auth for scripts,
 * the session cookie for browsers. /metrics also takes Prometheus' bearer token.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { ASSIGN_PATH } from "./assign/index.js";
import { HttpError } from "./api/http-error.js";
import type { Principals } from "./api/principal.js";

const CHALLENGE = 'Basic realm="FIONA", charset="UTF-8"';

/** A browser loading a page (not a script of a page, not a program). */
function isNavigation(req: Request): boolean {
  const mode = req.headers["sec-fetch-mode"];
  if (typeof mode === "string") return mode === "navigate";
  return (req.headers.accept ?? "").includes("text/html");
}

/** A script of a web page (browsers send Sec-Fetch-Site; programs such as curl or Node's fetch do not). */
function isPageScript(req: Request): boolean {
  return typeof req.headers["sec-fetch-site"] === "string" && req.headers["sec-fetch-mode"] !== "navigate";
}

/**
 * 401, with a basic-auth challenge for programs and page loads. Scripts of a page (Bull Board's UI
 * after its session ended) get none: the browser would pop up a password dialog for them.
 */
function unauthenticated(req: Request, res: Response, message: string): void {
  if (!isPageScript(req)) res.setHeader("WWW-Authenticate", CHALLENGE);
  res.setHeader("Cache-Control", "no-store");
  res.status(401).json({ error: message });
}

export interface SignedInOptions {
  /** Send browsers loading a page to the sign-in page (the Assign page), which brings them back. */
  signInPage?: boolean;
}

/** Sets res.locals.principal for a signed-in caller; answers 401 (or redirects to sign in), 403 or 429 otherwise. */
export function signedIn(principals: Principals, opts: SignedInOptions = {}): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    try {
      res.locals.principal = await principals.resolve(req);
    } catch (e) {
      if (!(e instanceof HttpError)) throw e;
      if (e.status !== 401) {
        if (e.status === 429) res.setHeader("Retry-After", "1");
        res.status(e.status).json({ error: e.message });
      } else if (opts.signInPage && (req.method === "GET" || req.method === "HEAD") && isNavigation(req)) {
        res.redirect(302, `${ASSIGN_PATH}/?next=${encodeURIComponent(req.originalUrl)}`);
      } else {
        unauthenticated(req, res, e.message);
      }
      return;
    }
    next();
  };
}

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest();

/**
 * `Authorization: Bearer <token>` with the configured token passes; any other bearer token gets 401;
 * requests without one go on to `otherwise` (sign-in).
 */
export function bearerOr(token: string | undefined, otherwise: RequestHandler): RequestHandler {
  const expected = token ? sha256(token) : undefined;
  return (req: Request, res: Response, next: NextFunction) => {
    const m = /^Bearer[ \t]+(\S{1,1024})[ \t]*$/i.exec(req.headers.authorization ?? "");
    if (!m) return otherwise(req, res, next);
    // Hashes of equal length, so the comparison's time says nothing about the token.
    if (expected && timingSafeEqual(sha256(m[1]!), expected)) return next();
    res.setHeader("WWW-Authenticate", 'Bearer realm="FIONA"');
    res.setHeader("Cache-Control", "no-store");
    res.status(401).json({ error: "wrong bearer token" });
  };
}
