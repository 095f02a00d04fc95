/**
 * HTTP basic auth: parsing `Authorization: Basic`, and the one checker that verifies a header once per
 * TTL (the user directory's, which serves every door of the web server).
 */
import { createHmac, randomBytes } from "node:crypto";
import type { PasswordCheck, WebUser } from "./users.js";

const DEFAULT_AUTH_CACHE_TTL_MS = 60_000;
const MAX_HEADER_LENGTH = 4096;

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

  /** Forget every verified header (the users changed). */
  clear(): void {
    this.verified.clear();
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
