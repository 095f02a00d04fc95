import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Request } from "express";
import { describe, expect, it } from "vitest";
import { configSchema, type FionaConfigInput } from "../../src/config/schema.js";
import { hashPassword } from "../../src/web/password.js";
import { usersFilePath, writeUsersFile } from "../../src/web/users-file.js";
import { UserDirectory } from "../../src/web/users.js";
import { basic } from "./helpers.js";

const fast = (pw: string) => hashPassword(pw, { N: 2 ** 10 });
const HASHES = { alice: fast("alice-pw"), admin: fast("admin-pw"), board: fast("board-pw") };

function config(
  web: FionaConfigInput["web"] = {},
  dataDir = mkdtempSync(path.join(tmpdir(), "fiona-users-")),
) {
  return configSchema.parse({
    dataDir,
    projects: [{ name: "PROJ" }, { name: "OTHER" }],
    web,
  });
}

function request(remoteAddress: string, headers: Record<string, string> = {}): Request {
  return { headers, socket: { remoteAddress } } as unknown as Request;
}

describe("configuration", () => {
  it("accepts users with grants and defaults", () => {
    const cfg = config({ users: [{ name: "alice", passwordHash: HASHES.alice, projects: ["PROJ"] }] });
    expect(cfg.web.users).toEqual([
      { name: "alice", passwordHash: HASHES.alice, admin: false, projects: ["PROJ"] },
    ]);
    expect(cfg.web.sessionMinutes).toBe(30);
    expect(cfg.web.showPatientIdentity).toBe(false);
    expect(cfg.web.trustedProxies).toEqual(["127.0.0.1", "::1"]);
  });

  it("rejects malformed hashes, duplicate users and odd names", () => {
    expect(() => config({ users: [{ name: "alice", passwordHash: "plaintext" }] })).toThrow(/password hash/);
    expect(() =>
      config({
        users: [
          { name: "alice", passwordHash: HASHES.alice },
          { name: "alice", passwordHash: HASHES.alice },
        ],
      }),
    ).toThrow(/duplicate user/);
    expect(() => config({ users: [{ name: "al ice" }] })).toThrow();
    expect(() => config({ trustedProxyHeader: "X-User: evil" })).toThrow();
    expect(() => config({ sessionMinutes: 0 })).toThrow();
    expect(() => config({ users: [{ name: "alice", role: "root" as "admin" }] })).toThrow();
    expect(() => config({ users: [{ name: "alice", admin: true, role: "viewer" }] })).toThrow(
      /contradicts role/,
    );
    expect(() => config({ metricsToken: "short" })).toThrow(/32 characters/);
  });
});

describe("user directory", () => {
  it("has no user at all without accounts (no anonymous administrator)", () => {
    const users = new UserDirectory(config());
    expect(users.size).toBe(0);
    expect(users.get("anonymous")).toBeUndefined();
  });

  it("maps web.users to roles: admin: true is admin, an explicit role stays, no role is operator", () => {
    const users = new UserDirectory(
      config({
        users: [
          { name: "old-admin", admin: true },
          { name: "watcher", role: "viewer", projects: ["PROJ"] },
          { name: "desk", projects: ["PROJ"] },
        ],
      }),
    );
    expect(users.get("old-admin")?.role).toBe("admin");
    expect(users.get("watcher")?.role).toBe("viewer");
    expect(users.get("desk")?.role).toBe("operator");
    expect(users.canUseProject(users.get("old-admin")!, "OTHER")).toBe(true);
    expect(users.canUseProject(users.get("watcher")!, "OTHER")).toBe(false);
  });

  it("merges <dataDir>/users.json and reads it again when it changes; web.users wins a shared name", async () => {
    let now = 0;
    const cfg = config({ users: [{ name: "alice", passwordHash: HASHES.alice, role: "viewer" }] });
    const file = usersFilePath(cfg.dataDir);
    writeUsersFile(file, [
      { name: "alice", passwordHash: HASHES.admin, role: "admin", projects: [] },
      { name: "dora", passwordHash: HASHES.admin, role: "operator", projects: ["PROJ"] },
    ]);
    const users = new UserDirectory(cfg, { now: () => now });
    expect(users.get("alice")).toMatchObject({ role: "viewer", passwordHash: HASHES.alice });
    expect(users.get("dora")).toMatchObject({ role: "operator", projects: ["PROJ"] });
    expect(await users.checkBasic(basic("dora", "admin-pw"))).toMatchObject({ ok: true });

    writeUsersFile(file, [{ name: "erik", passwordHash: HASHES.board, role: "viewer", projects: [] }]);
    // Lookups look at the file at most once a second; a password check always does.
    expect(users.get("erik")).toBeUndefined();
    now += 1000;
    expect(users.get("erik")?.role).toBe("viewer");
    expect(users.get("dora")).toBeUndefined();
    // A cached basic-auth answer for a removed user is forgotten.
    expect(await users.checkBasic(basic("dora", "admin-pw"))).toEqual({ ok: false, reason: "invalid" });

    writeUsersFile(file, [{ name: "fay", passwordHash: HASHES.board, role: "viewer", projects: [] }]);
    expect((await users.checkPassword("fay", "board-pw")).ok).toBe(true);

    // A broken file keeps the users read before.
    writeFileSync(file, "{ not json");
    now += 1000;
    expect(users.get("fay")?.role).toBe("viewer");
    rmSync(cfg.dataDir, { recursive: true, force: true });
  });

  it("refuses to start on a users file it cannot read", () => {
    const cfg = config();
    writeFileSync(usersFilePath(cfg.dataDir), JSON.stringify({ users: [{ name: "x", role: "boss" }] }));
    expect(() => new UserDirectory(cfg)).toThrow(/users\.json: users\.0\./);
  });

  it("grants only the listed projects; admins see all; web.basicAuth is an admin", () => {
    const users = new UserDirectory(
      config({
        basicAuth: { user: "board", passwordHash: HASHES.board },
        users: [
          { name: "alice", passwordHash: HASHES.alice, projects: ["PROJ", "GONE"] },
          { name: "admin", passwordHash: HASHES.admin, admin: true },
        ],
      }),
    );
    const alice = users.get("alice")!;
    const admin = users.get("admin")!;
    const board = users.get("board")!;
    const projects = [{ name: "PROJ" }, { name: "OTHER" }];
    expect(users.visibleProjects(alice, projects).map((p) => p.name)).toEqual(["PROJ"]);
    expect(users.canUseProject(alice, "OTHER")).toBe(false);
    expect(users.visibleProjects(admin, projects)).toHaveLength(2);
    expect(board.role).toBe("admin");
    expect(users.unknownGrants(config().projects)).toEqual(["GONE"]);
  });

  it("checks passwords, and unknown users fail the same way", async () => {
    const users = new UserDirectory(
      config({ users: [{ name: "alice", passwordHash: HASHES.alice }, { name: "sso-only" }] }),
    );
    expect(await users.checkPassword("alice", "alice-pw")).toMatchObject({
      ok: true,
      user: { name: "alice" },
    });
    expect(await users.checkPassword("alice", "wrong")).toEqual({ ok: false, reason: "invalid" });
    expect(await users.checkPassword("nobody", "alice-pw")).toEqual({ ok: false, reason: "invalid" });
    expect(await users.checkPassword("sso-only", "")).toEqual({ ok: false, reason: "invalid" });
  });

  it("throttles a user name after repeated failures, then lets it in again after the window", async () => {
    let now = 1_000_000;
    const users = new UserDirectory(config({ users: [{ name: "alice", passwordHash: HASHES.alice }] }), {
      maxFailures: 3,
      throttleWindowMs: 60_000,
      now: () => now,
    });
    for (let i = 0; i < 3; i++)
      expect((await users.checkPassword("alice", "bad", "10.0.0.1")).ok).toBe(false);
    expect(await users.checkPassword("alice", "alice-pw", "10.0.0.2")).toEqual({
      ok: false,
      reason: "throttled",
    });
    now += 61_000;
    expect((await users.checkPassword("alice", "alice-pw", "10.0.0.2")).ok).toBe(true);
  });

  it("verifies basic credentials and caches a verified header", async () => {
    let now = 0;
    const users = new UserDirectory(config({ users: [{ name: "alice", passwordHash: HASHES.alice }] }), {
      basicCacheTtlMs: 1000,
      now: () => now,
    });
    const header = basic("alice", "alice-pw");
    expect(await users.checkBasic(header)).toMatchObject({ ok: true });
    expect(await users.checkBasic(header)).toMatchObject({ ok: true });
    expect(await users.checkBasic(basic("alice", "nope"))).toEqual({ ok: false, reason: "invalid" });
    expect(await users.checkBasic("Basic !!!")).toEqual({ ok: false, reason: "invalid" });
    now = 2000;
    expect(await users.checkBasic(header)).toMatchObject({ ok: true });
  });

  it("takes the proxy header only from trusted proxies", () => {
    const users = new UserDirectory(
      config({
        trustedProxyHeader: "X-Forwarded-User",
        trustedProxies: ["10.1.1.1"],
        users: [{ name: "carol" }],
      }),
    );
    expect(users.proxyUserName(request("10.1.1.1", { "x-forwarded-user": "carol" }))).toBe("carol");
    expect(users.proxyUserName(request("::ffff:10.1.1.1", { "x-forwarded-user": "carol" }))).toBe("carol");
    expect(users.proxyUserName(request("10.9.9.9", { "x-forwarded-user": "carol" }))).toBeUndefined();
    expect(users.proxyUserName(request("10.1.1.1", {}))).toBeUndefined();
    expect(users.isSecure(request("10.1.1.1", { "x-forwarded-proto": "https" }))).toBe(true);
    expect(users.isSecure(request("10.9.9.9", { "x-forwarded-proto": "https" }))).toBe(false);
    const noProxy = new UserDirectory(config({ users: [{ name: "carol" }] }));
    expect(noProxy.proxyUserName(request("127.0.0.1", { "x-forwarded-user": "carol" }))).toBeUndefined();
  });
});
