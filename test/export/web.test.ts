import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedis } from "../../src/queues/connection.js";
import { createQueue, QUEUES } from "../../src/queues/index.js";
import { hashPassword } from "../../src/web/password.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import { placeInRaw } from "../support/pipeline.js";
import { basic, captureLogger, deletePrefix, REDIS_URL, testConfig, uniquePrefix } from "../web/helpers.js";

const PW = { alice: "alice-pw-1", bob: "bob-pw-2" };
const prefix = uniquePrefix();
const dataDir = mkdtempSync(path.join(tmpdir(), "fiona-export-web-"));
const { logger } = captureLogger();
let redis: Redis;
let web: WebHandle;
let study: GeneratedStudy;

const cfg = testConfig(prefix, {
  dataDir,
  secret: "export-web-secret-0123456789",
  projects: [{ name: "PROJ", participantPattern: "PROJ_[0-9]{4}", events: ["baseline"] }, { name: "OTHER" }],
  web: {
    users: [
      { name: "alice", passwordHash: hashPassword(PW.alice, { N: 2 ** 10 }), projects: ["PROJ"] },
      { name: "bob", passwordHash: hashPassword(PW.bob, { N: 2 ** 10 }), projects: ["OTHER"] },
    ],
  },
});

async function call(user: keyof typeof PW, pathname: string, body?: unknown) {
  const headers: Record<string, string> = { Authorization: basic(user, PW[user]) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`${web.url}${pathname}`, {
    method: body === undefined ? "GET" : "POST",
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString("utf8"));
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, bytes, json };
}

beforeAll(async () => {
  redis = createRedis({ url: REDIS_URL }, "producer");
  study = generateStudy({
    outDir: mkdtempSync(path.join(tmpdir(), "fiona-export-gen-")),
    seed: "export-web",
    instancesPerSeries: 3,
    fileSize: 2048,
  });
  placeInRaw(dataDir, study);
  web = await startWeb({ config: cfg, connection: redis, logger, port: 0, host: "127.0.0.1" });
});

afterAll(async () => {
  await web?.close();
  await deletePrefix(redis, prefix);
  redis?.disconnect();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("exports on the web", () => {
  let exportId = "";
  it("NoAssign answers a pseudonymized ZIP for a granted project", async () => {
    const r = await call("alice", "/api/noassign", {
      studyInstanceUid: study.studyInstanceUid,
      project: "PROJ",
      participant: "PROJ_0007",
      event: "baseline",
    });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("application/zip");
    expect(r.headers.get("content-disposition")).toMatch(
      /attachment; filename="PROJ_PROJ_0007_baseline_DEFAULT_/,
    );
    const zip = path.join(dataDir, "dl.zip");
    writeFileSync(zip, r.bytes);
    const names = execFileSync("zipinfo", ["-1", zip], { encoding: "utf8" }).split("\n").filter(Boolean);
    expect(names.filter((n) => n.startsWith("baseline/DICOM/"))).toHaveLength(3);
    expect(names).toContain("manifest.json");
    for (const marker of [study.phi.patientName, study.phi.patientId, study.phi.accessionNumber]) {
      const out = execFileSync("unzip", ["-p", zip], { maxBuffer: 64 * 1024 * 1024 });
      expect(out.includes(Buffer.from(marker))).toBe(false);
    }
  });

  it("lists exports with size and download link to granted users only", async () => {
    const mine = (await call("alice", "/api/exports")).json as Array<Record<string, unknown>>;
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ project: "PROJ", status: "done", source: "received" });
    expect(mine[0]!.size).toBeGreaterThan(0);
    exportId = String(mine[0]!.id);
    expect(mine[0]!.download).toBe(`/api/exports/${exportId}/download`);
    const dl = await call("alice", `/api/exports/${exportId}/download`);
    expect(dl.status).toBe(200);
    expect(dl.bytes.length).toBe(mine[0]!.size);

    expect((await call("bob", "/api/exports")).json).toEqual([]);
    expect((await call("bob", `/api/exports/${exportId}/download`)).status).toBe(404);
    expect((await call("bob", "/api/exports/../../etc/passwd")).status).toBe(404);
    const denied = await call("bob", "/api/noassign", {
      studyInstanceUid: study.studyInstanceUid,
      project: "PROJ",
      participant: "PROJ_0007",
    });
    expect(denied.status).toBe(404);
  });

  it("queues an export job, validating the participant pattern", async () => {
    const bad = await call("alice", "/api/exports", {
      studyInstanceUid: study.studyInstanceUid,
      project: "PROJ",
      participant: "nope",
    });
    expect(bad.status).toBe(400);
    const r = await call("alice", "/api/exports", {
      studyInstanceUid: study.studyInstanceUid,
      project: "PROJ",
      participant: "PROJ_0008",
      layout: "PURE",
    });
    expect(r.status).toBe(202);
    expect(r.json).toMatchObject({ status: "queued", layout: "PURE", download: null });
    const q = createQueue(QUEUES.export, redis, prefix);
    const job = await q.getJob(`export-${(r.json as { id: string }).id}`);
    await q.close();
    expect(job?.data).toEqual({ exportId: (r.json as { id: string }).id });
  });

  it("documents the export routes in /api/openapi.json", async () => {
    const doc = (await call("alice", "/api/openapi.json")).json as {
      paths: Record<string, Record<string, unknown>>;
    };
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`),
    );
    for (const route of [
      "GET /api/exports",
      "POST /api/exports",
      "GET /api/exports/{id}/download",
      "POST /api/noassign",
    ])
      expect(documented).toContain(route);
  });
});
