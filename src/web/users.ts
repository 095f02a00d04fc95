import { createHash } from "node:crypto";
import type { TLSSocket } from "node:tls";
import type { Request } from "express";
import type { FionaConfig, ProjectConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import { BasicAuthChecker } from "./auth.js";
import { verifyPasswordAsync } from "./password.js";
import type { Role } from "./roles.js";
import { fileVersion, readUsersFile, usersFilePath } from "./users-file.js";

/**
 * Users of the web server (pages, API, Bull Board, /metrics), their roles and project grants, and how
 * a request proves who it comes from: a password (login form or HTTP basic auth) or a header set by a
 * trusted authenticating reverse proxy.
 *
 * Users come from web.users in the configuration (and the deprecated web.basicAuth account, an
 * admin) and from <dataDir>/users.json (fiona user …), which is read again when it changes: at most
 * once a second on lookups, and on every password check. A name in both is the configuration's.
 */

export interface WebUser {
  name: string;
  role: Role;
  /** Granted project names (ignored for admins). */
  projects: readonly string[];
  passwordHash?: string;
}

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
  /** The users file (default <dataDir>/users.json). */
  usersFile?: string;
  /** Told when the users file cannot be read (the users read before stay). */
  logger?: Logger;
  now?: () => number;
}

/** A valid scrypt hash of a random, discarded password: unknown users cost as much time as known ones. */
const DUMMY_HASH = "scrypt$32768$8$1$siqlDa73oPXwU6puOa20Iw==$Y0AsO1CQ5am767GJCzvbkTso5HlTM0zF52HqrjJZWLo=";

/** How often lookups look at the users file. */
const FILE_CHECK_MS = 1000;

function normalizeAddress(addr: string | undefined): string {
  if (!addr) return "";
  return addr.startsWith("::ffff:") ? addr.slice(7) : addr;
}

/** The configuration's users: web.users (admin: true means admin; no role means operator) and web.basicAuth. */
function configUsers(web: FionaConfig["web"]): Map<string, WebUser> {
  const users = new Map<string, WebUser>();
  for (const u of web.users) {
    users.set(u.name, {
      name: u.name,
      role: u.admin ? "admin" : (u.role ?? "operator"),
      projects: [...u.projects],
      ...(u.passwordHash ? { passwordHash: u.passwordHash } : {}),
    });
  }
  if (web.basicAuth && !users.has(web.basicAuth.user)) {
    const { user, passwordHash } = web.basicAuth;
    users.set(user, { name: user, role: "admin", projects: [], passwordHash });
  }
  return users;
}

export class UserDirectory {
  private readonly fromConfig: Map<string, WebUser>;
  private users: Map<string, WebUser>;
  private readonly file: string;
  private fileSeen = "";
  private fileCheckedAt = -Infinity;
  private readonly logger?: Logger;
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
    this.fromConfig = configUsers(web);
    this.users = this.fromConfig;
    this.file = opts.usersFile ?? usersFilePath(cfg.dataDir);
    if (opts.logger) this.logger = opts.logger;
    if (web.trustedProxyHeader) this.proxyHeader = web.trustedProxyHeader.toLowerCase();
    this.trustedProxies = new Set(web.trustedProxies.map(normalizeAddress));
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
    // A broken file at start is an error of the site's setup: refuse to start rather than guess.
    this.reload(readUsersFile(this.file), fileVersion(this.file));
  }

  private reload(fileUsers: readonly WebUser[], version: string): void {
    const merged = new Map(this.fromConfig);
    for (const u of fileUsers) if (!merged.has(u.name)) merged.set(u.name, u);
    this.users = merged;
    this.fileSeen = version;
    // Cached basic-auth answers may name a removed user, an old password or an old role.
    this.basic.clear();
  }

  /** Read the users file again when it changed (at most once per FILE_CHECK_MS unless `force`). */
  private refresh(force = false): void {
    const now = this.now();
    if (!force && now - this.fileCheckedAt < FILE_CHECK_MS) return;
    this.fileCheckedAt = now;
    const version = fileVersion(this.file);
    if (version === this.fileSeen) return;
    try {
      this.reload(readUsersFile(this.file), version);
    } catch (e) {
      this.fileSeen = version;
      this.logger?.error(
        { err: e instanceof Error ? e.message : String(e) },
        "web: users file unreadable; keeping the users read before",
      );
    }
  }

  get(name: string): WebUser | undefined {
    this.refresh();
    return this.users.get(name);
  }

  /** How many users there are (configuration and users file). */
  get size(): number {
    this.refresh();
    return this.users.size;
  }

  /** Whether a login form makes sense (some user has a password). */
  get passwordLogin(): boolean {
    this.refresh();
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
    return user.role === "admin" || user.projects.includes(project);
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
    this.refresh(true);
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

  /**
   * Check an `Authorization: Basic` header; a verified header is cached (as an HMAC) for a minute. The
   * users file is looked at on every check (one stat), so a changed password or a removed user stops
   * working at once, not only after the next periodic look.
   */
  checkBasic(header: string, address?: string): Promise<PasswordCheck> {
    this.refresh(true);
    return this.basic.check(header, address);
  }
}
