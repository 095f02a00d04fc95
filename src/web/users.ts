import { createHash } from "node:crypto";
import type { TLSSocket } from "node:tls";
import type { Request } from "express";
import type { FionaConfig, ProjectConfig } from "../config/schema.js";
import { BasicAuthChecker } from "./auth.js";
import { verifyPasswordAsync } from "./password.js";

/**
 * Users of the Assign page and the REST API (web.users), their project grants, and how a request
 * proves who it comes from: a password (login form or HTTP basic auth) or a header set by a trusted
 * authenticating reverse proxy. The web.basicAuth account, when configured, is an admin too.
 *
 * A site with no account at all (no web.users, no web.basicAuth, no trustedProxyHeader) is "open":
 * everyone who can connect acts as the admin "anonymous", like the dashboard of such a site.
 */

export interface WebUser {
  name: string;
  admin: boolean;
  /** Granted project names (ignored for admins). */
  projects: readonly string[];
  passwordHash?: string;
}

export type AuthMode = "accounts" | "open";

export type PasswordCheck =
  { ok: true; user: WebUser } | { ok: false; reason: "invalid" | "busy" | "throttled" };

export interface UserDirectoryOptions {
  /** Distinct password verifications running at once (scrypt on the thread pool); beyond: "busy". */
  maxConcurrentVerifications?: number;
  /** Failed attempts per user name or address within `throttleWindowMs` before further attempts are refused. */
  maxFailures?: number;
  throttleWindowMs?: number;
  /** How long a verified Authorization header is accepted without running scrypt again. */
  basicCacheTtlMs?: number;
  now?: () => number;
}

export const ANONYMOUS: WebUser = Object.freeze({ name: "anonymous", admin: true, projects: [] });

/** A valid scrypt hash of a random, discarded password: unknown users cost as much time as known ones. */
const DUMMY_HASH = "scrypt$32768$8$1$siqlDa73oPXwU6puOa20Iw==$Y0AsO1CQ5am767GJCzvbkTso5HlTM0zF52HqrjJZWLo=";

function normalizeAddress(addr: string | undefined): string {
  if (!addr) return "";
  return addr.startsWith("::ffff:") ? addr.slice(7) : addr;
}

export class UserDirectory {
  readonly mode: AuthMode;
  private readonly users = new Map<string, WebUser>();
  private readonly proxyHeader?: string;
  private readonly trustedProxies: Set<string>;
  private readonly maxConcurrent: number;
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  private inFlight = 0;
  /** user name or "ip:<address>" → failure timestamps (ms). */
  private readonly failures = new Map<string, number[]>();
  /** The process's one cache of verified Authorization headers; checkPassword bounds the scrypt runs. */
  readonly basic: BasicAuthChecker;

  constructor(cfg: FionaConfig, opts: UserDirectoryOptions = {}) {
    const web = cfg.web;
    for (const u of web.users) {
      this.users.set(u.name, {
        name: u.name,
        admin: u.admin,
        projects: [...u.projects],
        ...(u.passwordHash ? { passwordHash: u.passwordHash } : {}),
      });
    }
    if (web.basicAuth && !this.users.has(web.basicAuth.user)) {
      this.users.set(web.basicAuth.user, {
        name: web.basicAuth.user,
        admin: true,
        projects: [],
        passwordHash: web.basicAuth.passwordHash,
      });
    }
    if (web.trustedProxyHeader) this.proxyHeader = web.trustedProxyHeader.toLowerCase();
    this.trustedProxies = new Set(web.trustedProxies.map(normalizeAddress));
    this.mode = this.users.size > 0 || this.proxyHeader ? "accounts" : "open";
    this.maxConcurrent = opts.maxConcurrentVerifications ?? 4;
    this.maxFailures = opts.maxFailures ?? 10;
    this.windowMs = opts.throttleWindowMs ?? 15 * 60_000;
    this.now = opts.now ?? Date.now;
    this.basic = new BasicAuthChecker(
      (name, password, address) => this.checkPassword(name, password, address),
      {
        ...(opts.basicCacheTtlMs !== undefined && { ttlMs: opts.basicCacheTtlMs }),
        now: this.now,
      },
    );
  }

  get(name: string): WebUser | undefined {
    return this.users.get(name);
  }

  /** Whether a login form makes sense (some user has a password). */
  get passwordLogin(): boolean {
    return [...this.users.values()].some((u) => u.passwordHash);
  }

  get proxyLogin(): boolean {
    return this.proxyHeader !== undefined;
  }

  /** Project names of configured grants that name no configured project (for a startup warning). */
  unknownGrants(projects: readonly ProjectConfig[]): string[] {
    const names = new Set(projects.map((p) => p.name));
    const out = new Set<string>();
    for (const u of this.users.values()) for (const p of u.projects) if (!names.has(p)) out.add(p);
    return [...out];
  }

  // ---- grants ----

  canUseProject(user: WebUser, project: string): boolean {
    return user.admin || user.projects.includes(project);
  }

  visibleProjects<P extends { name: string }>(user: WebUser, projects: readonly P[]): P[] {
    return projects.filter((p) => this.canUseProject(user, p.name));
  }

  // ---- proxies ----

  private fromTrustedProxy(req: Request): boolean {
    return this.trustedProxies.has(normalizeAddress(req.socket.remoteAddress));
  }

  /**
   * The user name a trusted proxy asserts for this request: undefined when no proxy header is
   * configured, the peer is not a trusted proxy, or the header is absent.
   */
  proxyUserName(req: Request): string | undefined {
    if (!this.proxyHeader || !this.fromTrustedProxy(req)) return undefined;
    const v = req.headers[this.proxyHeader];
    const name = (Array.isArray(v) ? v[0] : v)?.trim();
    return name ? name.slice(0, 256) : undefined;
  }

  /** Whether the client reached us over HTTPS (directly, or per X-Forwarded-Proto from a trusted proxy). */
  isSecure(req: Request): boolean {
    if ((req.socket as TLSSocket).encrypted) return true;
    if (!this.fromTrustedProxy(req)) return false;
    const proto = req.headers["x-forwarded-proto"];
    return (Array.isArray(proto) ? proto[0] : proto)?.split(",")[0]?.trim().toLowerCase() === "https";
  }

  // ---- passwords ----

  private recentFailures(key: string): number[] {
    const cutoff = this.now() - this.windowMs;
    const list = (this.failures.get(key) ?? []).filter((t) => t > cutoff);
    if (list.length) this.failures.set(key, list);
    else this.failures.delete(key);
    return list;
  }

  private noteFailure(key: string): void {
    const list = this.recentFailures(key);
    list.push(this.now());
    this.failures.set(key, list);
    while (this.failures.size > 10_000) {
      const oldest = this.failures.keys().next().value;
      if (oldest === undefined) break;
      this.failures.delete(oldest);
    }
  }

  /**
   * Check a user name and password. Unknown users and users without a password cost one scrypt run as
   * well. After maxFailures failed attempts for a name or from an address within the window, further
   * attempts are refused without checking.
   */
  async checkPassword(name: string, password: string, address?: string): Promise<PasswordCheck> {
    const ipKey = `ip:${normalizeAddress(address)}`;
    const nameKey = `user:${createHash("sha256").update(name).digest("hex")}`;
    if (
      this.recentFailures(nameKey).length >= this.maxFailures ||
      this.recentFailures(ipKey).length >= this.maxFailures * 3
    ) {
      return { ok: false, reason: "throttled" };
    }
    if (this.inFlight >= this.maxConcurrent) return { ok: false, reason: "busy" };
    const user = this.users.get(name);
    this.inFlight++;
    let ok: boolean;
    try {
      ok = await verifyPasswordAsync(password, user?.passwordHash ?? DUMMY_HASH);
    } finally {
      this.inFlight--;
    }
    if (ok && user?.passwordHash) {
      this.failures.delete(nameKey);
      return { ok: true, user };
    }
    this.noteFailure(nameKey);
    this.noteFailure(ipKey);
    return { ok: false, reason: "invalid" };
  }

  /** Check an `Authorization: Basic` header; a verified header is cached (as an HMAC) for a minute. */
  checkBasic(header: string, address?: string): Promise<PasswordCheck> {
    return this.basic.check(header, address);
  }
}
