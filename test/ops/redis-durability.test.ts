import { rmSync } from "node:fs";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { readDurability } from "../../src/queues/durability.js";
import { freePort, testConfig, waitFor } from "../support/env.js";
import { startPrivateRedis, type PrivateRedis } from "./redis-server.js";
import { startRole, type RoleProcess } from "./role-process.js";

let volatile: PrivateRedis; // nothing persisted
let durable: PrivateRedis; // AOF, noeviction
let evicting: PrivateRedis; // default RDB snapshots, allkeys-lru
const roles: RoleProcess[] = [];
const configs: FionaConfig[] = [];

beforeAll(async () => {
  [volatile, durable, evicting] = await Promise.all([
    startPrivateRedis(17301, ["--appendonly", "no", "--save", ""]),
    startPrivateRedis(17302, ["--appendonly", "yes", "--maxmemory-policy", "noeviction"]),
    startPrivateRedis(17303, ["--maxmemory-policy", "allkeys-lru"]),
  ]);
  // Users that cannot run CONFIG (a managed Redis), and that cannot run INFO either.
  for (const server of [volatile, durable, evicting]) {
    const admin = server.client();
    await admin.acl("SETUSER", "noconfig", "on", "nopass", "~*", "+@all", "-config");
    await admin.acl("SETUSER", "blind", "on", "nopass", "~*", "+@all", "-config", "-info");
  }
});

afterAll(async () => {
  await Promise.all(roles.map((r) => r.stop()));
  await Promise.all([volatile, durable, evicting].map((s) => s?.remove()));
  for (const c of configs) rmSync(c.dataDir, { recursive: true, force: true });
});

async function asUser(server: PrivateRedis, username: string | undefined) {
  // No ready check: it runs INFO, which the "blind" user may not.
  const r = new Redis({
    port: server.port,
    host: "127.0.0.1",
    enableReadyCheck: false,
    ...(username && { username, password: "x" }),
  });
  try {
    return await readDurability(r);
  } finally {
    r.disconnect();
  }
}

describe("reading the durability settings", () => {
  it("flags appendonly no with an empty save, from CONFIG GET", async () => {
    const report = await asUser(volatile, undefined);
    expect(report).toMatchObject({ status: "not-durable", source: "config", unknown: [] });
    expect(report.problems).toEqual([
      expect.objectContaining({
        setting: "appendonly",
        value: 'no (save "")',
        set: expect.stringMatching(/^appendonly yes/),
      }),
    ]);
  });

  it("accepts AOF with noeviction", async () => {
    expect(await asUser(durable, undefined)).toEqual({
      status: "ok",
      source: "config",
      problems: [],
      unknown: [],
    });
  });

  it("accepts RDB snapshots but flags an evicting maxmemory-policy", async () => {
    const report = await asUser(evicting, undefined);
    expect(report.status).toBe("not-durable");
    expect(report.problems).toEqual([
      expect.objectContaining({
        setting: "maxmemory-policy",
        value: "allkeys-lru",
        set: "maxmemory-policy noeviction",
      }),
    ]);
  });

  it("falls back to INFO when CONFIG is not allowed", async () => {
    expect(await asUser(durable, "noconfig")).toEqual({
      status: "ok",
      source: "info",
      problems: [],
      unknown: [],
    });
    const evictingInfo = await asUser(evicting, "noconfig");
    expect(evictingInfo.source).toBe("info");
    expect(evictingInfo.problems.map((p) => p.setting)).toEqual(["maxmemory-policy"]);
    // INFO cannot tell whether RDB snapshots are configured: said so, not guessed.
    expect(evictingInfo.unknown).toEqual([
      expect.stringMatching(/^persistence: AOF is off and CONFIG is not available/),
    ]);
    const volatileInfo = await asUser(volatile, "noconfig");
    expect(volatileInfo).toMatchObject({ status: "unknown", source: "info", problems: [] });
  });

  it("reports unknown, with the reasons, when neither CONFIG nor INFO may be read", async () => {
    const report = await asUser(volatile, "blind");
    expect(report).toMatchObject({ status: "unknown", source: "none", problems: [] });
    expect(report.unknown).toHaveLength(2);
  });
});

async function roleConfig(server: PrivateRedis, redis: Partial<FionaConfig["redis"]>): Promise<FionaConfig> {
  const base = testConfig({ httpPort: await freePort(), log: { level: "info" } });
  const cfg = { ...base, redis: { ...base.redis, url: server.url, durabilityCheckSeconds: 1, ...redis } };
  configs.push(cfg);
  return cfg;
}

const readyz = async (cfg: FionaConfig) => {
  const res = await fetch(`http://127.0.0.1:${cfg.httpPort}/readyz`);
  return {
    status: res.status,
    body: (await res.json()) as { status: string; checks: Record<string, unknown> },
  };
};

describe("the roles", () => {
  it("web on a Redis without persistence: logs the setting, /readyz not ready until it is fixed", async () => {
    const cfg = await roleConfig(volatile, { requireDurable: true });
    const web = startRole(cfg, ["web"]);
    roles.push(web);
    const event = await web.waitForEvent((e) => e.event === "redis-not-durable", "redis-not-durable");
    expect(event).toMatchObject({
      level: 50,
      setting: "appendonly",
      value: 'no (save "")',
      requireDurable: true,
    });
    expect(String(event.set)).toMatch(/^appendonly yes \(or RDB snapshots: save "/);
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${cfg.httpPort}/healthz`).catch(() => undefined))?.ok,
      "web",
    );
    const before = await readyz(cfg);
    expect(before.status).toBe(503);
    expect(before.body.checks.redisDurability).toEqual({
      ok: false,
      detail: {
        status: "degraded",
        requireDurable: true,
        problems: [{ setting: "appendonly", value: 'no (save "")', set: event.set }],
      },
    });

    // Fixed at runtime: the next check (every second here) sees it, without a restart.
    await volatile.client().config("SET", "appendonly", "yes");
    await web.waitForEvent((e) => e.event === "redis-durable", "redis-durable");
    const after = await waitFor(async () => {
      const r = await readyz(cfg);
      return r.status === 200 ? r : undefined;
    }, "ready");
    expect(after.body.checks.redisDurability).toEqual({ ok: true });
    await volatile.client().config("SET", "appendonly", "no");
    expect(web.notJson()).toEqual([]);
  });

  it("web with requireDurable false: stays ready, reports the check degraded, logs a warning", async () => {
    const cfg = await roleConfig(evicting, { requireDurable: false });
    const web = startRole(cfg, ["web"]);
    roles.push(web);
    const event = await web.waitForEvent((e) => e.event === "redis-not-durable", "redis-not-durable");
    expect(event).toMatchObject({
      level: 40,
      setting: "maxmemory-policy",
      value: "allkeys-lru",
      requireDurable: false,
    });
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${cfg.httpPort}/healthz`).catch(() => undefined))?.ok,
      "web",
    );
    const r = await readyz(cfg);
    expect(r.status).toBe(200);
    expect(r.body.checks.redisDurability).toMatchObject({
      ok: false,
      detail: { status: "degraded", problems: [{ setting: "maxmemory-policy", value: "allkeys-lru" }] },
    });
    // BullMQ warns about the eviction policy on the console: routed into the log as JSON.
    await web.waitForEvent(
      (e) => e.event === "console" && /Eviction policy/.test(String(e.msg)),
      "console line",
    );
    expect(web.notJson()).toEqual([]);
  });

  it("a worker checks at start too: redis-durable on AOF with noeviction", async () => {
    const cfg = await roleConfig(durable, { requireDurable: true });
    const worker = startRole(cfg, ["worker", "--queues", "cleanup"]);
    roles.push(worker);
    const event = await worker.waitForEvent((e) => e.event === "redis-durable", "redis-durable");
    expect(event).toMatchObject({ source: "config" });
    await worker.waitForEvent((e) => e.msg === "workers started", "workers started");
    expect(worker.events().filter((e) => e.event === "redis-not-durable")).toEqual([]);
    expect(await worker.stop()).toBe(0);
    expect(worker.notJson()).toEqual([]);
  });
});
