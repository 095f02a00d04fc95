/**
 * `fiona user add|list|passwd|remove` and `fiona audit` from the build (dist/), against a running web
 * server that reads <dataDir>/users.json again when it changes: a user added on the command line can
 * sign in at once, a changed password or a removed user ends their sessions and basic-auth access.
 */
import { spawn } from "node:child_process";
import { existsSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { hashPassword } from "../../src/web/password.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { cleanup, testConfig } from "../support/env.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString("base64")}`;

let cfg: FionaConfig;
let configFile: string;
let redis: Redis;
const handles: WebHandle[] = [];

/** `fiona <args>` with `stdin` piped in; never throws, so failures can be looked at. */
function fiona(args: string[], stdin = "", config = configFile) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ["bin/fiona.js", "--config", config, ...args], { cwd: ROOT });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

async function web(config: FionaConfig): Promise<WebHandle> {
  const h = await startWeb({ config, connection: redis, port: 0, host: "127.0.0.1" });
  handles.push(h);
  return h;
}

const sessionOf = (h: WebHandle, headers: Record<string, string>) =>
  fetch(`${h.url}/api/session`, { headers });

beforeAll(() => {
  cfg = testConfig({
    projects: [{ name: "PROJ" }],
    web: { users: [{ name: "cfg-user", passwordHash: hashPassword("cfg-user-password", { N: 2 ** 10 }) }] },
  });
  configFile = path.join(cfg.dataDir, "fiona.config.json");
  writeFileSync(configFile, JSON.stringify({ ...cfg, log: { level: "warn" } }));
  redis = new Redis(cfg.redis.url, { maxRetriesPerRequest: null });
});

afterAll(async () => {
  await Promise.all(handles.map((h) => h.close()));
  redis.disconnect();
  await cleanup(cfg);
});

describe("fiona user", () => {
  it("adds, lists, re-passwords and removes users that the running web server picks up", async () => {
    const h = await web(cfg);
    const added = await fiona(
      ["user", "add", "alice", "--role", "operator", "--projects", "PROJ"],
      "alice-password-1\n",
    );
    expect(added).toMatchObject({ code: 0, stdout: "user alice added (operator, projects PROJ)\n" });
    const file = path.join(cfg.dataDir, "users.json");
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const listed = JSON.parse((await fiona(["user", "list", "--json"])).stdout) as unknown;
    expect(listed).toEqual([
      { name: "cfg-user", role: "operator", projects: [], source: "web.users", password: true },
      { name: "alice", role: "operator", projects: ["PROJ"], source: "users.json", password: true },
    ]);
    expect((await fiona(["user", "list"])).stdout).toContain("alice\toperator\tPROJ\tusers.json");

    // Signed in at once, without a restart.
    const alice = await sessionOf(h, { authorization: basic("alice", "alice-password-1") });
    expect(await alice.json()).toMatchObject({ user: "alice", role: "operator", projects: ["PROJ"] });
    const login = await fetch(`${h.url}/api/session`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user: "alice", password: "alice-password-1" }),
    });
    const cookie = login.headers.get("set-cookie")!.split(";")[0]!;

    expect(await fiona(["user", "passwd", "alice"], "alice-password-2\n")).toMatchObject({ code: 0 });
    expect((await sessionOf(h, { authorization: basic("alice", "alice-password-1") })).status).toBe(401);
    expect((await sessionOf(h, { authorization: basic("alice", "alice-password-2") })).status).toBe(200);
    expect((await sessionOf(h, { cookie })).status).toBe(401);

    expect(await fiona(["user", "remove", "alice"])).toMatchObject({
      code: 0,
      stdout: "user alice removed\n",
    });
    await new Promise((r) => setTimeout(r, 1100)); // lookups look at the file at most once a second
    expect((await sessionOf(h, { authorization: basic("alice", "alice-password-2") })).status).toBe(401);
  });

  it("refuses bad input and users of the configuration file", async () => {
    const short = await fiona(["user", "add", "bob"], "short\n");
    expect(short.code).not.toBe(0);
    expect(short.stderr).toContain("at least 12 characters");
    expect((await fiona(["user", "add", "bob", "--role", "root"], "bob-password-1\n")).stderr).toContain(
      "role root: use viewer, operator, admin",
    );
    expect((await fiona(["user", "add", "b b"], "bob-password-1\n")).stderr).toContain("letters, digits");
    expect((await fiona(["user", "add", "cfg-user"], "bob-password-1\n")).stderr).toContain("exists already");
    expect((await fiona(["user", "passwd", "cfg-user"], "bob-password-1\n")).stderr).toContain(
      "is a user of the configuration file: change it there",
    );
    expect((await fiona(["user", "remove", "nobody"])).stderr).toContain("no user nobody");
  });

  it("replaces the initial administrator's password and deletes the file that held it", async () => {
    const fresh = testConfig();
    const freshFile = path.join(fresh.dataDir, "fiona.config.json");
    writeFileSync(freshFile, JSON.stringify({ ...fresh, log: { level: "warn" } }));
    const h = await web(fresh);
    const passwordFile = path.join(fresh.dataDir, "initial-admin-password");
    expect(existsSync(passwordFile)).toBe(true);
    expect(await fiona(["user", "passwd", "admin"], "new-admin-password\n", freshFile)).toMatchObject({
      code: 0,
    });
    expect(existsSync(passwordFile)).toBe(false);
    expect((await sessionOf(h, { authorization: basic("admin", "new-admin-password") })).status).toBe(200);
    await cleanup(fresh);
  });
});

describe("fiona audit", () => {
  it("prints the audit log with the user changes made on the command line", async () => {
    const entries = JSON.parse((await fiona(["audit", "--json"])).stdout) as Array<Record<string, unknown>>;
    const mine = entries.filter((e) => String(e.action).startsWith("user-"));
    expect(mine.map((e) => [e.action, e.detail, e.via])).toEqual([
      ["user-add", "alice operator PROJ", "cli"],
      ["user-passwd", "alice", "cli"],
      ["user-remove", "alice", "cli"],
    ]);
    const text = (await fiona(["audit"])).stdout;
    expect(text).toMatch(/^\d{4}-\d\d-\d\dT\S+ {2}\S+ \(cli\) {2}user-add {2}detail=alice operator PROJ$/m);
    const since = await fiona(["audit", "--since", new Date(Date.now() + 60_000).toISOString()]);
    expect(since.stdout).toBe("no audit entries\n");
    const all = JSON.parse((await fiona(["audit", "--since", "2000-01-01", "--json"])).stdout) as unknown[];
    expect(all.length).toBe(entries.length);
    expect((await fiona(["audit", "--since", "yesterday"])).stderr).toContain("not an ISO date");
  });
});
