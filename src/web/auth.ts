import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { FionaConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import { verifyPasswordAsync } from "./password.js";

export type BasicAuthConfig = NonNullable<FionaConfig["web"]["basicAuth"]>;

export interface BasicAuthOptions {
  logger?: Logger;
  /** How long a verified Authorization header is accepted without running scrypt again. */
  cacheTtlMs?: number;
  /** Upper bound on cached headers; the oldest go first. */
  cacheMaxEntries?: number;
  /**
   * Distinct verifications allowed to run at once. scrypt runs on the libuv thread pool, which the
   * receiver's file writes share, so a flood of wrong passwords must not occupy it; requests beyond
   * this answer 429.
   */
  maxConcurrentVerifications?: number;
  realm?: string;
}

export const DEFAULT_AUTH_CACHE_TTL_MS = 60_000;
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

/**
 * HTTP basic auth against web.basicAuth. Without a configured user it lets every request through.
 * Credentials are never logged; verified headers are cached for cacheTtlMs under an HMAC of the
 * header with a per-process random key (the raw header is never kept), and concurrent requests
 * carrying the same new header share one scrypt run.
 */
export function basicAuth(config: BasicAuthConfig | undefined, opts: BasicAuthOptions = {}): RequestHandler {
  if (!config) {
    return (_req: Request, _res: Response, next: NextFunction) => next();
  }
  const { user, passwordHash } = config;
  const logger = opts.logger;
  const ttl = opts.cacheTtlMs ?? DEFAULT_AUTH_CACHE_TTL_MS;
  const maxEntries = opts.cacheMaxEntries ?? 256;
  const maxConcurrent = opts.maxConcurrentVerifications ?? 4;
  const realm = (opts.realm ?? "FIONA").replace(/["\\]/g, "");
  const challenge = `Basic realm="${realm}", charset="UTF-8"`;

  const cacheKeySecret = randomBytes(32);
  const userDigest = sha256(user);
  /** HMAC(header) → expiry (ms since epoch). Map keeps insertion order, so the first key is the oldest. */
  const verified = new Map<string, number>();
  const inFlight = new Map<string, Promise<boolean>>();
  let failures = 0;
  let lastFailureLog = 0;

  const keyFor = (header: string) => createHmac("sha256", cacheKeySecret).update(header).digest("base64");

  async function check(header: string): Promise<boolean> {
    const creds = parseBasicAuth(header);
    if (!creds) return false;
    // Both comparisons always run, so timing says nothing about which part was wrong.
    const userOk = timingSafeEqual(sha256(creds.user), userDigest);
    const passwordOk = await verifyPasswordAsync(creds.password, passwordHash);
    return userOk && passwordOk;
  }

  function remember(key: string) {
    verified.delete(key);
    verified.set(key, Date.now() + ttl);
    while (verified.size > maxEntries) {
      const oldest = verified.keys().next().value;
      if (oldest === undefined) break;
      verified.delete(oldest);
    }
  }

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
    const key = keyFor(header);
    const expiry = verified.get(key);
    if (expiry !== undefined) {
      if (expiry > Date.now()) {
        next();
        return;
      }
      verified.delete(key);
    }
    let pending = inFlight.get(key);
    if (!pending) {
      if (inFlight.size >= maxConcurrent) {
        deny(req, res, 429);
        return;
      }
      pending = check(header).finally(() => inFlight.delete(key));
      inFlight.set(key, pending);
    }
    pending.then(
      (ok) => {
        if (ok) {
          remember(key);
          next();
        } else {
          deny(req, res);
        }
      },
      (err: unknown) => next(err),
    );
  };
}
