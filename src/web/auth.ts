/**
 * HTTP basic auth: parsing `Authorization: Basic`, the one checker that verifies a header once per
 * TTL (the user directory's serves the API and the dashboard alike), and the middleware that guards
 * the dashboard, /metrics and /api/status with the web.basicAuth account.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { FionaConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import { verifyPasswordAsync } from "./password.js";
import type { PasswordCheck, WebUser } from "./users.js";

export type BasicAuthConfig = NonNullable<FionaConfig["web"]["basicAuth"]>;

const DEFAULT_AUTH_CACHE_TTL_MS = 60_000;
const MAX_HEADER_LENGTH = 4096;
const FAILURE_LOG_INTERVAL_MS = 10_000;

function sha256(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

/** Parses `Authorization: Basic <base64(user:password)>`; null when absent or malformed. */
export function parseBasicAuth(header: string | undefined): { user: string; password: string } | null {
  if (!header || header.length > MAX_HEADER_LENGTH) return null;
  const m = /^Basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(header);
  if (!m?.[1]) return null;
  const decoded = Buffer.from(m[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return null;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Checks a user name and password (scrypt); `address` is the client's, for throttling. */
export type VerifyPassword = (user: string, password: string, address?: string) => Promise<PasswordCheck>;

export interface BasicAuthCheckerOptions {
  /** How long a verified Authorization header is accepted without running scrypt again. */
  ttlMs?: number;
  /** Upper bound on cached headers; the oldest go first. */
  maxEntries?: number;
  /** Distinct headers verified at once; a further new one is "busy". Default: no bound of its own. */
  maxConcurrent?: number;
  now?: () => number;
}

/**
 * Verifies Authorization headers with `verify`. Verified headers are cached for ttlMs under an HMAC
 * of the header with a per-process random key (the raw header is never kept); concurrent requests
 * carrying the same new header share one verification; failures are not cached.
 */
export class BasicAuthChecker {
  /** HMAC(header) → user and expiry. Map keeps insertion order, so the first key is the oldest. */
  private readonly verified = new Map<string, { user: WebUser; expires: number }>();
  private readonly inFlight = new Map<string, Promise<PasswordCheck>>();
  private readonly cacheKey = randomBytes(32);
  private readonly ttl: number;
  private readonly maxEntries: number;
  private readonly maxConcurrent: number;
  private readonly now: () => number;

  constructor(
    private readonly verify: VerifyPassword,
    opts: BasicAuthCheckerOptions = {},
  ) {
    this.ttl = opts.ttlMs ?? DEFAULT_AUTH_CACHE_TTL_MS;
    this.maxEntries = opts.maxEntries ?? 256;
    this.maxConcurrent = opts.maxConcurrent ?? Infinity;
    this.now = opts.now ?? Date.now;
  }

  check(header: string, address?: string): Promise<PasswordCheck> {
    const key = createHmac("sha256", this.cacheKey).update(header).digest("base64");
    const hit = this.verified.get(key);
    if (hit) {
      if (hit.expires > this.now()) return Promise.resolve({ ok: true, user: hit.user });
      this.verified.delete(key);
    }
    let pending = this.inFlight.get(key);
    if (!pending) {
      if (this.inFlight.size >= this.maxConcurrent) return Promise.resolve({ ok: false, reason: "busy" });
      pending = this.verifyHeader(header, address)
        .then((r) => {
          if (r.ok) this.remember(key, r.user);
          return r;
        })
        .finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  private async verifyHeader(header: string, address: string | undefined): Promise<PasswordCheck> {
    const creds = parseBasicAuth(header);
    return creds ? this.verify(creds.user, creds.password, address) : { ok: false, reason: "invalid" };
  }

  private remember(key: string, user: WebUser): void {
    this.verified.set(key, { user, expires: this.now() + this.ttl });
    while (this.verified.size > this.maxEntries) {
      const oldest = this.verified.keys().next().value;
      if (oldest === undefined) break;
      this.verified.delete(oldest);
    }
  }
}

/** web.basicAuth as the only account, for a middleware without a user directory. */
function basicAuthAccount({ user, passwordHash }: BasicAuthConfig): VerifyPassword {
  const userDigest = sha256(user);
  const account: WebUser = { name: user, admin: true, projects: [] };
  return async (name, password) => {
    // Both comparisons always run, so timing says nothing about which part was wrong.
    const userOk = timingSafeEqual(sha256(name), userDigest);
    const passwordOk = await verifyPasswordAsync(password, passwordHash);
    return userOk && passwordOk ? { ok: true, user: account } : { ok: false, reason: "invalid" };
  };
}

export interface BasicAuthOptions {
  logger?: Logger;
  /**
   * The checker to share (the user directory's, so one verified header serves the API and the
   * dashboard). Without one the middleware makes its own for web.basicAuth, from the options below.
   */
  checker?: BasicAuthChecker;
  cacheTtlMs?: number;
  cacheMaxEntries?: number;
  /**
   * Distinct verifications allowed to run at once. scrypt runs on the libuv thread pool, which the
   * receiver's file writes share, so a flood of wrong passwords must not occupy it; requests beyond
   * this answer 429.
   */
  maxConcurrentVerifications?: number;
  realm?: string;
}

/**
 * HTTP basic auth for the web.basicAuth account. Without a configured account it lets every request
 * through. Credentials are never logged. 401 with a challenge for missing or wrong credentials, 429
 * while too many verifications run or the name or address is throttled.
 */
export function basicAuth(config: BasicAuthConfig | undefined, opts: BasicAuthOptions = {}): RequestHandler {
  if (!config) {
    return (_req: Request, _res: Response, next: NextFunction) => next();
  }
  const checker =
    opts.checker ??
    new BasicAuthChecker(basicAuthAccount(config), {
      ...(opts.cacheTtlMs !== undefined && { ttlMs: opts.cacheTtlMs }),
      ...(opts.cacheMaxEntries !== undefined && { maxEntries: opts.cacheMaxEntries }),
      maxConcurrent: opts.maxConcurrentVerifications ?? 4,
    });
  const logger = opts.logger;
  const realm = (opts.realm ?? "FIONA").replace(/["\\]/g, "");
  const challenge = `Basic realm="${realm}", charset="UTF-8"`;
  let failures = 0;
  let lastFailureLog = 0;

  function deny(req: Request, res: Response, status: 401 | 429 = 401) {
    if (status === 401) {
      failures++;
      const now = Date.now();
      if (logger && now - lastFailureLog >= FAILURE_LOG_INTERVAL_MS) {
        // Address and path only: never the header, the user name or the password.
        logger.warn({ ip: req.ip, path: req.path, failures }, "web: basic auth failed");
        lastFailureLog = now;
        failures = 0;
      }
      res.setHeader("WWW-Authenticate", challenge);
    } else {
      res.setHeader("Retry-After", "1");
    }
    res.setHeader("Cache-Control", "no-store");
    res
      .status(status)
      .json({ error: status === 401 ? "authentication required" : "too many login attempts" });
  }

  return (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    if (!header || header.length > MAX_HEADER_LENGTH || !/^Basic[ \t]/i.test(header)) {
      deny(req, res);
      return;
    }
    checker.check(header, req.ip).then(
      (r) => {
        // A directory's checker also knows web.users accounts; only web.basicAuth's opens these routes.
        if (r.ok && r.user.name === config.user) next();
        else deny(req, res, r.ok || r.reason === "invalid" ? 401 : 429);
      },
      (err: unknown) => next(err),
    );
  };
}
