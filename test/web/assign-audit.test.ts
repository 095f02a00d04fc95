import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditLog } from "../../src/registry/audit.js";
import { captureLogger, deletePrefix, REDIS_URL, uniquePrefix } from "./helpers.js";

const prefix = uniquePrefix();
let redis: Redis;

beforeAll(() => {
  redis = new Redis(REDIS_URL);
});

afterAll(async () => {
  await deletePrefix(redis, prefix);
  redis.disconnect();
});

describe("audit log", () => {
  it("records entries in a Redis stream and as pino events, newest first", async () => {
    const { logger, lines } = captureLogger();
    const audit = new AuditLog(redis, `${prefix}-a`, { logger });
    const at = Date.parse("2025-03-01T12:00:00Z");
    const first = await audit.record(
      {
        user: "alice",
        action: "assign",
        via: "password",
        study: "1.2.3",
        project: "PROJ",
        participant: "P1",
        event: "baseline",
        requestId: "abc",
        run: 1,
      },
      at,
    );
    expect(first).toMatchObject({ at: "2025-03-01T12:00:00.000Z", user: "alice" });
    expect(first.id).toMatch(/^\d+-\d+$/);
    await audit.record({ user: "bob", action: "assign", project: "OTHER", participant: "O1" });
    await audit.record({ user: "carol", action: "login", via: "proxy" });

    const all = await audit.list();
    expect(all.map((e) => e.user)).toEqual(["carol", "bob", "alice"]);
    expect(all[2]).toEqual({
      id: first.id,
      at: "2025-03-01T12:00:00.000Z",
      user: "alice",
      action: "assign",
      via: "password",
      study: "1.2.3",
      project: "PROJ",
      participant: "P1",
      event: "baseline",
      requestId: "abc",
      run: 1,
    });
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(line).toMatchObject({
      event: "audit",
      audit: { user: "alice", project: "PROJ", participant: "P1", event: "baseline" },
    });
  });

  it("filters by project (leaving out entries without one) and pages", async () => {
    const audit = new AuditLog(redis, `${prefix}-b`);
    for (let i = 0; i < 30; i++) {
      await audit.record({
        user: "u",
        action: "assign",
        project: i % 3 === 0 ? "PROJ" : "OTHER",
        participant: `P${i}`,
      });
    }
    await audit.record({ user: "u", action: "login" });
    const proj = await audit.list({ projects: new Set(["PROJ"]) });
    expect(proj).toHaveLength(10);
    expect(proj.every((e) => e.project === "PROJ")).toBe(true);
    const page1 = await audit.list({ limit: 12 });
    const page2 = await audit.list({ limit: 12, before: page1.at(-1)!.id });
    const page3 = await audit.list({ limit: 12, before: page2.at(-1)!.id });
    expect(page1[0]!.action).toBe("login");
    expect([...page1, ...page2, ...page3].map((e) => e.id)).toHaveLength(31);
    expect(new Set([...page1, ...page2, ...page3].map((e) => e.id)).size).toBe(31);
  });

  it("is capped", async () => {
    const audit = new AuditLog(redis, `${prefix}-c`, { maxEntries: 10 });
    for (let i = 0; i < 500; i++) await audit.record({ user: "u", action: "assign", participant: `P${i}` });
    const len = await redis.xlen(audit.key);
    expect(len).toBeLessThan(500);
    expect(len).toBeGreaterThanOrEqual(10);
    expect((await audit.list({ limit: 1 }))[0]!.participant).toBe("P499");
  });
});
