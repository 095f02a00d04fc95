import type { Request } from "express";
import type { SessionData, SessionManager } from "./session.js";

/**
 * Cross-site request forgery defences of the web server. Every POST/PUT/PATCH/DELETE under /api and
 * /admin/queues (Bull Board) must
 *
 * 1. not come from another site: `Sec-Fetch-Site` must be same-origin or none, or, from clients that do
 *    not send it, `Origin` (when present) must name this host; and
 * 2. either carry the token of the caller's session (a synchronizer token, an HMAC of the session id)
 *    in `X-CSRF-Token` (the Assign page, from GET /api/session) or `X-XSRF-TOKEN` (Bull Board's UI,
 *    whose HTTP client copies it from the XSRF-TOKEN cookie set on /admin/queues), when the caller is
 *    authenticated by the session cookie; or, when it is authenticated by an `Authorization` header
 *    (scripts), carry `Content-Type: application/json` (or text/csv for uploads). Neither those headers
 *    nor those content types can be sent cross-origin without a CORS preflight, which this server
 *    never grants.
 *
 * The session cookie is SameSite=Strict in addition, so browsers do not send it on cross-site requests.
 */

const CSRF_HEADERS = ["x-csrf-token", "x-xsrf-token"];

const UNSAFE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Content types a cross-origin page cannot send without a preflight. */
const NON_SIMPLE_TYPES = ["application/json", "text/csv"];

/** True for the methods that change something. */
export function isWrite(req: Request): boolean {
  return UNSAFE_METHODS.has(req.method);
}

/** True when the browser says the request comes from another site (or another origin). */
export function crossSite(req: Request): boolean {
  const site = req.headers["sec-fetch-site"];
  if (typeof site === "string") return !(site === "same-origin" || site === "none");
  const origin = req.headers.origin;
  if (typeof origin === "string") {
    if (origin === "null") return true;
    try {
      return new URL(origin).host !== req.headers.host;
    } catch {
      return true;
    }
  }
  return false;
}

/** True when the request's Content-Type is one a cross-origin form or no-cors fetch cannot produce. */
function nonSimpleContentType(req: Request): boolean {
  const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  return NON_SIMPLE_TYPES.includes(type);
}

export type WriteCheck = { ok: true } | { ok: false; error: string };

/**
 * Whether a state-changing request may proceed. `session` is the session the request was
 * authenticated with (undefined for basic auth).
 */
export function checkWrite(
  req: Request,
  sessions: SessionManager,
  session: SessionData | undefined,
): WriteCheck {
  if (!isWrite(req)) return { ok: true };
  if (crossSite(req)) return { ok: false, error: "cross-site request refused" };
  if (session) {
    const token = CSRF_HEADERS.map((h) => req.headers[h]).find((v) => typeof v === "string");
    if (!sessions.checkCsrf(session, token as string | undefined)) {
      return { ok: false, error: "missing or invalid CSRF token (X-CSRF-Token)" };
    }
    return { ok: true };
  }
  if (!nonSimpleContentType(req)) {
    return { ok: false, error: "requests without a session must send Content-Type: application/json" };
  }
  return { ok: true };
}
