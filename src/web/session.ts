import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Sessions of the Assign page: a stateless cookie `fiona_session=<payload>.<mac>` where the payload is
 * base64url JSON and the MAC an HMAC-SHA256 under a key derived from the site secret (so every web
 * process of a site accepts it, and it survives restarts) or, without a secret, a random per-process
 * key (sessions end when the process restarts).
 *
 * The cookie is HttpOnly, SameSite=Strict, Path=/ and Secure on HTTPS. A session ends after
 * `idleMinutes` without user activity (requests marked as background polls do not count) and after
 * `maxHours` in any case. Signing out revokes the session id in this process and deletes the cookie.
 * A session names its user; the user is looked up among the users on every request, so removing
 * a user or changing their password (the session carries a fingerprint of the hash) ends their sessions.
 */

export const SESSION_COOKIE = "fiona_session";

/** How the session was opened: the login form or a trusted proxy header. */
export type SessionVia = "password" | "proxy";

export interface SessionData {
  /** Random session id (also the CSRF token's subject). */
  sid: string;
  user: string;
  via: SessionVia;
  /** Issued at (seconds since the epoch). */
  iat: number;
  /** Last user activity (seconds since the epoch). */
  seen: number;
  /** Fingerprint of the user's password hash at sign-in (password sessions). */
  fp?: string;
}

export interface SessionOptions {
  key: Buffer;
  idleMinutes: number;
  /** Absolute lifetime (default 12 h). */
  maxHours?: number;
  /** Re-issue the cookie at most this often while the user is active (default 60 s). */
  refreshSeconds?: number;
  now?: () => number;
}

const MAX_COOKIE_CHARS = 2048;

/** The signing key: derived from the site secret when there is one, else random for this process. */
export function sessionKey(secret: string | undefined): Buffer {
  if (!secret) return randomBytes(32);
  return createHmac("sha256", secret).update("fiona web session key v1").digest();
}

/** Cookies of a request as a map (the first occurrence of a name wins). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header || header.length > 8192) return out;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (!out.has(name)) out.set(name, value);
  }
  return out;
}

function b64url(buf: Buffer): string {
  return buf.toString("base64url");
}

export class SessionManager {
  private readonly key: Buffer;
  private readonly idleSeconds: number;
  private readonly maxSeconds: number;
  private readonly refreshSeconds: number;
  private readonly now: () => number;
  /** Revoked session ids → when their cookie would have expired anyway (seconds). */
  private readonly revoked = new Map<string, number>();

  constructor(opts: SessionOptions) {
    this.key = opts.key;
    this.idleSeconds = Math.round(opts.idleMinutes * 60);
    this.maxSeconds = Math.round((opts.maxHours ?? 12) * 3600);
    this.refreshSeconds = opts.refreshSeconds ?? 60;
    this.now = opts.now ?? Date.now;
  }

  private nowSeconds(): number {
    return Math.floor(this.now() / 1000);
  }

  private mac(payload: string): string {
    return b64url(createHmac("sha256", this.key).update(`session\0${payload}`).digest());
  }

  /** A fingerprint of a password hash, so a changed password invalidates sessions opened with the old one. */
  fingerprint(passwordHash: string | undefined): string | undefined {
    if (!passwordHash) return undefined;
    return b64url(createHmac("sha256", this.key).update(`pw\0${passwordHash}`).digest()).slice(0, 16);
  }

  /** A new session for `user`. */
  create(user: string, via: SessionVia, fp?: string): SessionData {
    const t = this.nowSeconds();
    return { sid: b64url(randomBytes(18)), user, via, iat: t, seen: t, ...(fp ? { fp } : {}) };
  }

  /** The cookie value of a session. */
  encode(s: SessionData): string {
    const payload = b64url(Buffer.from(JSON.stringify(s), "utf8"));
    return `${payload}.${this.mac(payload)}`;
  }

  /** The session a cookie value carries, or null when it is forged, malformed, expired or revoked. */
  decode(value: string | undefined): SessionData | null {
    if (!value || value.length > MAX_COOKIE_CHARS) return null;
    const dot = value.indexOf(".");
    if (dot <= 0) return null;
    const payload = value.slice(0, dot);
    const given = Buffer.from(value.slice(dot + 1), "utf8");
    const expected = Buffer.from(this.mac(payload), "utf8");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    let s: unknown;
    try {
      s = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    } catch {
      return null;
    }
    if (!isSessionData(s)) return null;
    const t = this.nowSeconds();
    if (t - s.seen >= this.idleSeconds || t - s.iat >= this.maxSeconds || s.seen > t + 60) return null;
    if (this.revoked.has(s.sid)) return null;
    return s;
  }

  /** The session read from a Cookie header. */
  fromCookieHeader(header: string | undefined): SessionData | null {
    return this.decode(parseCookies(header).get(SESSION_COOKIE));
  }

  /** The session with its activity time moved to now, when a refresh is due; undefined otherwise. */
  touch(s: SessionData): SessionData | undefined {
    const t = this.nowSeconds();
    if (t - s.seen < this.refreshSeconds) return undefined;
    return { ...s, seen: t };
  }

  /** When the session ends without further activity (ms since the epoch). */
  expiresAt(s: SessionData): number {
    return Math.min(s.seen + this.idleSeconds, s.iat + this.maxSeconds) * 1000;
  }

  /** End a session in this process (its cookie is refused from now on). */
  revoke(s: SessionData): void {
    const t = this.nowSeconds();
    for (const [sid, until] of this.revoked) if (until <= t) this.revoked.delete(sid);
    this.revoked.set(s.sid, Math.min(s.seen + this.idleSeconds, s.iat + this.maxSeconds));
  }

  /** Set-Cookie header value for a session. */
  setCookie(s: SessionData, secure: boolean): string {
    const maxAge = Math.max(0, Math.floor(this.expiresAt(s) / 1000) - this.nowSeconds());
    return [
      `${SESSION_COOKIE}=${this.encode(s)}`,
      "Path=/",
      "HttpOnly",
      "SameSite=Strict",
      `Max-Age=${maxAge}`,
      ...(secure ? ["Secure"] : []),
    ].join("; ");
  }

  /** Set-Cookie header value that deletes the session cookie. */
  clearCookie(secure: boolean): string {
    return [
      `${SESSION_COOKIE}=`,
      "Path=/",
      "HttpOnly",
      "SameSite=Strict",
      "Max-Age=0",
      ...(secure ? ["Secure"] : []),
    ].join("; ");
  }

  /** The CSRF token of a session (an HMAC of its id under the same key). */
  csrfToken(s: SessionData): string {
    return b64url(createHmac("sha256", this.key).update(`csrf\0${s.sid}`).digest());
  }

  /** Whether `token` is the CSRF token of the session (constant-time). */
  checkCsrf(s: SessionData, token: string | undefined): boolean {
    if (typeof token !== "string" || token.length > 256) return false;
    const a = Buffer.from(token, "utf8");
    const b = Buffer.from(this.csrfToken(s), "utf8");
    return a.length === b.length && timingSafeEqual(a, b);
  }
}

function isSessionData(v: unknown): v is SessionData {
  if (typeof v !== "object" || v === null) return false;
  const s = v as Record<string, unknown>;
  return (
    typeof s.sid === "string" &&
    typeof s.user === "string" &&
    (s.via === "password" || s.via === "proxy") &&
    Number.isSafeInteger(s.iat) &&
    Number.isSafeInteger(s.seen) &&
    (s.fp === undefined || typeof s.fp === "string")
  );
}
