import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { QuarantineRecord } from "../../src/quarantine/record.js";
import { QuarantineStore } from "../../src/quarantine/store.js";
import { createRedis } from "../../src/queues/connection.js";
import { createQueue, QUEUES } from "../../src/queues/index.js";
import { AuditLog } from "../../src/registry/audit.js";
import { hashPassword } from "../../src/web/password.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { basic, captureLogger, deletePrefix, REDIS_URL, testConfig, uniquePrefix } from "./helpers.js";

const PW = { alice: "alice-pw-1", bob: "bob-pw-2", root: "root-pw-3" };
const prefix = uniquePrefix();
const { logger } = captureLogger();
let redis: Redis;
let web: WebHandle;
let store: QuarantineStore;
const records: Record<"proj" | "other" | "site", QuarantineRecord> = {} as never;

const as = (user: keyof typeof PW) => ({ Authorization: basic(user, PW[user]) });

async function call(pathname: string, user?: keyof typeof PW, method = "GET") {
  const post = method === "POST";
  const res = await fetch(`${web.url}${pathname}`, {
    method,
    headers: { ...(user ? as(user) : {}), ...(post ? { "Content-Type": "application/json" } : {}) },
    ...(post ? { body: "{}" } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

const listed = async (user: keyof typeof PW, query = "") =>
  ((await call(`/api/failures${query}`, user)).body as { failures: QuarantineRecord[] }).failures.map(
    (r) => r.id,
  );

beforeAll(async () => {
  redis = createRedis({ url: REDIS_URL }, "producer");
  const cfg = testConfig(prefix, {
    dataDir: mkdtempSync(path.join(tmpdir(), "fiona-failures-api-")),
    projects: [{ name: "PROJ" }, { name: "OTHER" }],
    web: {
      users: [
        { name: "alice", passwordHash: hashPassword(PW.alice, { N: 2 ** 10 }), projects: ["PROJ"] },
        { name: "bob", passwordHash: hashPassword(PW.bob, { N: 2 ** 10 }), projects: ["OTHER"] },
        { name: "root", passwordHash: hashPassword(PW.root, { N: 2 ** 10 }), admin: true },
      ],
    },
  });
  web = await startWeb({ config: cfg, connection: redis, logger, port: 0, host: "127.0.0.1" });
  store = new QuarantineStore(redis, prefix);
  records.proj = await store.add({
    stage: "export",
    reason: "no images of this study are on disk",
    ids: { exportId: "e1", project: "PROJ", participant: "PROJ_0001" },
    job: { id: "export-e1", name: "export", data: { exportId: "e1" } },
  });
  records.other = await store.add({
    stage: "send",
    reason: "RESEARCH@10.0.0.9:104: association rejected",
    ids: { requestId: "r-other", project: "OTHER" },
  });
  records.site = await store.add({
    stage: "ingest",
    reason: "unreadable DICOM",
    ids: { file: "x.dcm" },
    job: { id: "7", name: "ingest", data: { path: "/nowhere/x.dcm" } },
  });
});

afterAll(async () => {
  await web?.close();
  await deletePrefix(redis, prefix);
  redis.disconnect();
});

describe("/api/failures", () => {
  it("shows administrators every stage's records, others only their projects'", async () => {
    expect((await call("/api/failures")).status).toBe(401);
    expect((await listed("root")).sort()).toEqual(
      Object.values(records)
        .map((r) => r.id)
        .sort(),
    );
    expect(await listed("alice")).toEqual([records.proj.id]);
    expect(await listed("bob")).toEqual([records.other.id]);
    expect(await listed("root", "?stage=ingest")).toEqual([records.site.id]);
  });

  it("lets a user act only on records they can see", async () => {
    expect((await call(`/api/failures/${records.other.id}/retry`, "alice", "POST")).status).toBe(404);
    expect((await call(`/api/failures/${records.site.id}/dismiss`, "alice", "POST")).status).toBe(404);
    expect((await call("/api/failures/not-an-id/retry", "root", "POST")).status).toBe(400);
  });

  it("retries a job from its record and audits who did it", async () => {
    const r = await call(`/api/failures/${records.proj.id}/retry`, "alice", "POST");
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ kind: "job", queue: "export" });
    const queue = createQueue(QUEUES.export, redis, prefix);
    const job = await queue.getJob((r.body as { jobId: string }).jobId);
    expect(job?.data).toEqual({ exportId: "e1" });
    await queue.close();
    expect(await store.get(records.proj.id)).toBeUndefined();
    const audit = await new AuditLog(redis, prefix).list({ limit: 5 });
    expect(audit[0]).toMatchObject({
      user: "alice",
      action: "quarantine-retry",
      via: "basic",
      project: "PROJ",
    });
  });

  it("dismisses a record, and a retry of a transfer that no longer exists says so", async () => {
    expect((await call(`/api/failures/${records.other.id}/retry`, "bob", "POST")).status).toBe(404);
    expect(await store.get(records.other.id)).toBeDefined();
    const d = await call(`/api/failures/${records.site.id}/dismiss`, "root", "POST");
    expect(d).toEqual({ status: 200, body: { kind: "dismissed" } });
    expect(await listed("root")).toEqual([records.other.id]);
  });
});
