/**
 * Every state-changing call through Bull Board lands in the audit log (src/registry/audit.ts) with who,
 * what (action, queue, job id), when and the HTTP status it was answered with, refused ones included.
 */
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QUEUES } from "../../src/queues/index.js";
import { AuditLog, type AuditEntry } from "../../src/registry/audit.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { captureLogger, deletePrefix, REDIS_URL, testConfig, uniquePrefix } from "./helpers.js";
import { authOf, failJobs, roleUsers, signIn, USERS, type Caller } from "./roles-kit.js";

const prefix = uniquePrefix();
const { logger, lines } = captureLogger();
let redis: Redis;
let web: WebHandle;
let audit: AuditLog;

beforeAll(async () => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const cfg = testConfig(prefix, {
    secret: "board-audit-secret-0123456789",
    projects: [{ name: "PROJ" }, { name: "OTHER" }],
    web: { users: roleUsers() },
  });
  web = await startWeb({ config: cfg, connection: redis, logger, port: 0, host: "127.0.0.1" });
  audit = new AuditLog(redis, prefix);
});

afterAll(async () => {
  await web?.close();
  await deletePrefix(redis, prefix);
  redis.disconnect();
});

async function put(caller: Caller, path: string): Promise<number> {
  const res = await fetch(`${web.url}/admin/queues/api/queues/${path}`, {
    method: "PUT",
    headers: { ...authOf(caller), "Content-Type": "application/json" },
  });
  await res.arrayBuffer();
  return res.status;
}

/** The newest entry of `action` (entries are written once the answer is sent). */
async function lastOf(action: string): Promise<AuditEntry | undefined> {
  for (let i = 0; i < 50; i++) {
    const hit = (await audit.list({ limit: 50 })).find((e) => e.action === action);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

describe("Bull Board audit", () => {
  it("records a retry with the user, the queue, the job, its project and the status", async () => {
    const [id] = await failJobs(prefix, QUEUES.send, [{ requestId: "r1", project: "PROJ" }]);
    expect(await put("operator", `${QUEUES.send}/${id}/retry`)).toBe(204);
    const entry = await lastOf("queues:retry");
    expect(entry).toMatchObject({
      user: USERS.operator.name,
      via: "basic",
      action: "queues:retry",
      queue: QUEUES.send,
      jobId: id,
      project: "PROJ",
      status: 204,
    });
    expect(Date.now() - Date.parse(entry!.at)).toBeLessThan(10_000);
    // The pino copy for log shipping, written first.
    expect(lines.some((l) => l.includes('"event":"audit"') && l.includes('"action":"queues:retry"'))).toBe(
      true,
    );
  });

  it("records refused actions with their 403, and the refusal changes nothing", async () => {
    expect(await put("operator", `${QUEUES.export}/clean/failed`)).toBe(403);
    expect(await lastOf("queues:clean-all")).toMatchObject({
      user: USERS.operator.name,
      queue: QUEUES.export,
      detail: "jobs failed",
      status: 403,
    });
    expect(await put("viewer", `${QUEUES.inventory}/pause`)).toBe(403);
    expect(await lastOf("queues:pause")).toMatchObject({
      user: USERS.viewer.name,
      queue: QUEUES.inventory,
      status: 403,
    });
    const inventory = new Queue(QUEUES.inventory, { connection: redis, prefix });
    expect(await inventory.isPaused()).toBe(false);
    await inventory.close();
  });

  it("records a browser's actions under its signed-in user, and shows them in the audit API by grant", async () => {
    const s = await signIn(web.url, "admin");
    const [other] = await failJobs(prefix, QUEUES.transfer, [{ requestId: "r2", project: "OTHER" }]);
    const res = await fetch(`${web.url}/admin/queues/api/queues/${QUEUES.transfer}/${other}/clean`, {
      method: "PUT",
      headers: { cookie: s.cookie, "X-XSRF-TOKEN": s.csrf },
    });
    expect(res.status).toBe(204);
    expect(await lastOf("queues:remove")).toMatchObject({
      user: USERS.admin.name,
      via: "password",
      queue: QUEUES.transfer,
      jobId: other,
      project: "OTHER",
      status: 204,
    });
    const seen = async (caller: Caller) =>
      ((await (await fetch(`${web.url}/api/audit`, { headers: authOf(caller) })).json()) as AuditEntry[]).map(
        (e) => `${e.action} ${e.project ?? ""}`,
      );
    expect(await seen("admin")).toEqual(expect.arrayContaining(["queues:remove OTHER", "queues:retry PROJ"]));
    // The operator of PROJ sees PROJ's entries only.
    const operator = await seen("operator");
    expect(operator).toContain("queues:retry PROJ");
    expect(operator).not.toContain("queues:remove OTHER");
  });

  it("does not record reads", async () => {
    const before = (await audit.list({ limit: 1000 })).length;
    expect((await fetch(`${web.url}/admin/queues/api/queues`, { headers: authOf("admin") })).status).toBe(
      200,
    );
    await new Promise((r) => setTimeout(r, 100));
    expect((await audit.list({ limit: 1000 })).length).toBe(before);
  });
});
