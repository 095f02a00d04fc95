/**
 * No anonymous administrator: the first start of a web server without users creates the administrator
 * with a random password (hash in <dataDir>/users.json, the password in <dataDir>/initial-admin-password,
 * both mode 0600) and logs where the password is, never the password. Without users it refuses to listen
 * on an address other machines can reach. The startup line names the address actually bound.
 */
import { existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import {
  basic,
  captureLogger,
  deletePrefix,
  REDIS_URL,
  testAdminUser,
  testConfig,
  uniquePrefix,
} from "./helpers.js";

const prefix = uniquePrefix();
let redis: Redis;
const handles: WebHandle[] = [];

beforeAll(() => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
});

afterAll(async () => {
  await Promise.all(handles.map((h) => h.close()));
  await deletePrefix(redis, prefix);
  redis.disconnect();
});

const freshDir = () => mkdtempSync(path.join(tmpdir(), "fiona-first-start-"));
const mode = (file: string) => statSync(file).mode & 0o777;

async function start(dataDir: string, host = "127.0.0.1", users: (typeof testAdminUser)[] = []) {
  const capture = captureLogger();
  const web = await startWeb({
    config: testConfig(prefix, { dataDir, web: { users } }),
    connection: redis,
    logger: capture.logger,
    port: 0,
    host,
  });
  handles.push(web);
  return { web, lines: capture.lines };
}

describe("first start", () => {
  it("creates the administrator, keeps its password in a file only the service user can read, and logs only where", async () => {
    const dataDir = freshDir();
    const { web, lines } = await start(dataDir);
    const usersFile = path.join(dataDir, "users.json");
    const passwordFile = path.join(dataDir, "initial-admin-password");
    expect(mode(usersFile)).toBe(0o600);
    expect(mode(passwordFile)).toBe(0o600);
    const password = readFileSync(passwordFile, "utf8").trim();
    expect(password.length).toBeGreaterThanOrEqual(20);
    const stored = JSON.parse(readFileSync(usersFile, "utf8")) as { users: Array<Record<string, unknown>> };
    expect(stored.users).toEqual([
      { name: "admin", passwordHash: expect.stringMatching(/^scrypt\$/), role: "admin", projects: [] },
    ]);

    const all = lines.join("\n");
    expect(all).not.toContain(password);
    const created = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.passwordFile);
    expect(created).toMatchObject({ level: 40, passwordFile, usersFile, user: "admin" });
    expect(String(created!.msg)).toContain(passwordFile);

    // The password opens the web server as the administrator; nothing opens it anonymously.
    expect((await fetch(`${web.url}/api/session`)).status).toBe(401);
    const session = await fetch(`${web.url}/api/session`, {
      headers: { authorization: basic("admin", password) },
    });
    expect(await session.json()).toMatchObject({ user: "admin", role: "admin", admin: true });

    // A second start keeps that administrator and its password.
    const before = readFileSync(usersFile, "utf8");
    const again = await start(dataDir);
    expect(readFileSync(usersFile, "utf8")).toBe(before);
    expect(readFileSync(passwordFile, "utf8").trim()).toBe(password);
    expect(again.lines.some((l) => l.includes("passwordFile"))).toBe(false);
  });

  it("refuses to listen on a non-loopback address without users, creating nothing", async () => {
    const dataDir = freshDir();
    await expect(start(dataDir, "0.0.0.0")).rejects.toThrow(
      /refusing to listen on 0\.0\.0\.0 without any web user: create one first with "fiona user add <name> --role admin"/,
    );
    expect(existsSync(path.join(dataDir, "users.json"))).toBe(false);
    expect(existsSync(path.join(dataDir, "initial-admin-password"))).toBe(false);
  });

  it("listens on a non-loopback address with users, and logs the address it bound", async () => {
    const { web, lines } = await start(freshDir(), "0.0.0.0", [testAdminUser]);
    expect(web.url).toBe(`http://0.0.0.0:${web.port}`);
    const listening = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === "web: listening");
    expect(listening).toMatchObject({ url: `http://0.0.0.0:${web.port}`, users: 1 });
  });
});
