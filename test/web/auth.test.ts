import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedis } from "../../src/queues/connection.js";
import { ALL_QUEUES } from "../../src/queues/index.js";
import { parseBasicAuth } from "../../src/web/auth.js";
import { hashPassword } from "../../src/web/password.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { basic, captureLogger, deletePrefix, REDIS_URL, testConfig, uniquePrefix } from "./helpers.js";

const prefix = uniquePrefix();
const USER = "admin";
const PASSWORD = "s3cret-Pässword";
const passwordHash = hashPassword(PASSWORD, { N: 2 ** 12 });
const capture = captureLogger();
let redis: Redis;
let secured: WebHandle;
/** A site with no user at all: its first start creates the administrator. */
let open: WebHandle;

const PROTECTED = ["/api/status", "/metrics", "/admin/queues", "/admin/queues/api/queues"];

beforeAll(async () => {
  redis = createRedis({ url: REDIS_URL }, "producer");
  await new Promise<void>((resolve, reject) => {
    redis.once("ready", () => resolve());
    redis.once("error", reject);
  });
  secured = await startWeb({
    config: testConfig(prefix, { web: { basicAuth: { user: USER, passwordHash } } }),
    connection: redis,
    logger: capture.logger,
    port: 0,
  });
  open = await startWeb({ config: testConfig(prefix), connection: redis, logger: capture.logger, port: 0 });
});

afterAll(async () => {
  await Promise.all([secured?.close(), open?.close()]);
  await deletePrefix(redis, prefix);
  redis.disconnect();
});

describe("parseBasicAuth", () => {
  it("splits at the first colon and rejects malformed headers", () => {
    expect(parseBasicAuth(basic("u", "p:w:d"))).toEqual({ user: "u", password: "p:w:d" });
    expect(parseBasicAuth(basic("", ""))).toEqual({ user: "", password: "" });
    expect(parseBasicAuth(undefined)).toBeNull();
    expect(parseBasicAuth("Bearer abc")).toBeNull();
    expect(parseBasicAuth("Basic")).toBeNull();
    expect(parseBasicAuth("Basic !!!")).toBeNull();
    expect(parseBasicAuth(`Basic ${Buffer.from("nocolon").toString("base64")}`)).toBeNull();
    expect(parseBasicAuth(`Basic ${"A".repeat(5000)}`)).toBeNull();
  });
});

describe("basic auth", () => {
  it("answers 401 with a FIONA challenge without credentials", async () => {
    for (const path of PROTECTED) {
      const res = await fetch(`${secured.url}${path}`);
      expect(res.status, path).toBe(401);
      expect(res.headers.get("www-authenticate"), path).toMatch(/^Basic realm="FIONA"/);
      expect(res.headers.get("cache-control")).toBe("no-store");
    }
  });

  it("answers 401 for a wrong password, a wrong user or a malformed header", async () => {
    const headers = [
      basic(USER, "wrong"),
      basic("root", PASSWORD),
      basic(USER, ""),
      basic(USER.toUpperCase(), PASSWORD),
      "Basic not-base64!",
      `Bearer ${PASSWORD}`,
    ];
    for (const authorization of headers) {
      const res = await fetch(`${secured.url}/api/status`, { headers: { authorization } });
      expect(res.status, authorization).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Basic realm="FIONA"/);
    }
  });

  it("answers 200 with the right credentials", async () => {
    const authorization = basic(USER, PASSWORD);
    for (const path of PROTECTED) {
      const res = await fetch(`${secured.url}${path}`, { headers: { authorization } });
      expect(res.status, path).toBe(200);
    }
    const status = (await (
      await fetch(`${secured.url}/api/status`, { headers: { authorization } })
    ).json()) as {
      queues: Record<string, unknown>;
    };
    expect(Object.keys(status.queues).sort()).toEqual([...ALL_QUEUES].sort());
  });

  it("lets many concurrent requests with the same new header through", async () => {
    // Same credentials, different header spelling (case of the scheme), so not yet cached.
    const authorization = `basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`;
    const results = await Promise.all(
      Array.from({ length: 12 }, () =>
        fetch(`${secured.url}/admin/queues/api/queues`, { headers: { authorization } }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(12).fill(200));
  });

  it("leaves /healthz and /readyz open", async () => {
    expect((await fetch(`${secured.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${secured.url}/readyz`)).status).toBe(200);
  });

  it("asks for credentials on a site without users too (no anonymous administrator)", async () => {
    for (const path of PROTECTED) {
      const res = await fetch(`${open.url}${path}`);
      expect(res.status, path).toBe(401);
      expect(res.headers.get("www-authenticate"), path).toMatch(/^Basic realm="FIONA"/);
    }
    // The deprecated web.basicAuth account is an admin like any other, on the API too.
    const session = await fetch(`${secured.url}/api/session`, {
      headers: { authorization: basic(USER, PASSWORD) },
    });
    expect(await session.json()).toMatchObject({ user: USER, role: "admin", via: "basic" });
    expect(capture.lines.join("\n")).toContain("web.basicAuth is deprecated");
  });

  it("never logs credentials", async () => {
    await fetch(`${secured.url}/api/status`, {
      headers: { authorization: basic("mallory", "hunter2-guess") },
    });
    const all = capture.lines.join("\n");
    expect(all).toContain("basic auth failed");
    for (const secret of [
      PASSWORD,
      "hunter2-guess",
      "mallory",
      passwordHash,
      basic(USER, PASSWORD).slice(6),
      basic("mallory", "hunter2-guess").slice(6),
    ]) {
      expect(all).not.toContain(secret);
    }
  });
});
