import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/schema.js";
import { createRedis } from "../../src/queues/connection.js";
import { AuditLog } from "../../src/registry/audit.js";
import { hashPassword } from "../../src/web/password.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import { placeInRaw } from "../support/pipeline.js";
import { startStorescp, type Storescp } from "../support/peers.js";
import { basic, captureLogger, deletePrefix, REDIS_URL, testConfig, uniquePrefix } from "../web/helpers.js";

const PW = { alice: "alice-pw-1", bob: "bob-pw-2" };
const prefix = uniquePrefix();
const dataDir = mkdtempSync(path.join(tmpdir(), "fiona-noassign-fwd-"));
const peerDir = mkdtempSync(path.join(tmpdir(), "fiona-noassign-peer-"));
const { logger } = captureLogger();
let redis: Redis;
let web: WebHandle;
let study: GeneratedStudy;
let peer: Storescp;

function post(user: keyof typeof PW, body: unknown): RequestInit {
  return {
    method: "POST",
    headers: { Authorization: basic(user, PW[user]), "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
}

async function call(user: keyof typeof PW, pathname: string, body?: unknown) {
  const headers: Record<string, string> = { Authorization: basic(user, PW[user]) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`${web.url}${pathname}`, {
    method: body === undefined ? "GET" : "POST",
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  redis = createRedis({ url: REDIS_URL }, "producer");
  peer = await startStorescp(peerDir);
  study = generateStudy({
    outDir: mkdtempSync(path.join(tmpdir(), "fiona-noassign-gen-")),
    seed: "noassign-forward",
    instancesPerSeries: 3,
    fileSize: 2048,
  });
  placeInRaw(dataDir, study);
  const cfg = testConfig(prefix, {
    dataDir,
    secret: "noassign-forward-secret-0123456789",
    projects: [
      { name: "PROJ", participantPattern: "PROJ_[0-9]{4}", events: ["baseline"] },
      { name: "OTHER" },
    ],
    noAssign: { destinations: [{ name: "clinic", aeTitle: "RESEARCH", host: "127.0.0.1", port: peer.port }] },
    web: {
      users: [
        { name: "alice", passwordHash: hashPassword(PW.alice, { N: 2 ** 10 }), projects: ["PROJ"] },
        { name: "bob", passwordHash: hashPassword(PW.bob, { N: 2 ** 10 }), projects: ["OTHER"] },
      ],
    },
  });
  web = await startWeb({ config: cfg, connection: redis, logger, port: 0, host: "127.0.0.1" });
});

afterAll(async () => {
  await web?.close();
  await peer?.stop();
  await deletePrefix(redis, prefix);
  redis?.disconnect();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(peerDir, { recursive: true, force: true });
});

describe("NoAssign forward", () => {
  const ask = { project: "PROJ", participant: "PROJ_0042", event: "baseline", destination: "clinic" };

  it("validates noAssign.destinations in the configuration", () => {
    const base = { projects: [] };
    expect(configSchema.safeParse({ ...base, noAssign: { destinations: [{ name: "x" }] } }).success).toBe(
      false,
    );
    const dup = { name: "a", aeTitle: "A", host: "h", port: 104 };
    expect(configSchema.safeParse({ ...base, noAssign: { destinations: [dup, dup] } }).success).toBe(false);
  });

  it("lists the destinations by name", async () => {
    const r = await call("alice", "/api/noassign/destinations");
    expect(r.status).toBe(200);
    expect(r.json).toEqual([{ name: "clinic", aeTitle: "RESEARCH" }]);
  });

  it("pseudonymizes the study and sends it to the destination in one association", async () => {
    const r = await call("alice", "/api/noassign/forward", {
      studyInstanceUid: study.studyInstanceUid,
      ...ask,
    });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ destination: "clinic", files: 3, sent: 3, failed: 0 });
    expect(peer.associations()).toBe(1);
    const received = readdirSync(peerDir).filter((f) => !f.startsWith("."));
    expect(received).toHaveLength(3);
    const markers = Object.values(study.phi).filter(
      (v): v is string => typeof v === "string" && v.length > 3,
    );
    expect(markers.length).toBeGreaterThan(5);
    for (const f of received) {
      const bytes = readFileSync(path.join(peerDir, f));
      for (const m of [...markers, study.studyInstanceUid])
        expect(bytes.includes(Buffer.from(m))).toBe(false);
      expect(bytes.includes(Buffer.from("PROJ_0042"))).toBe(true);
      for (const m of markers.flatMap((x) => x.split("^")))
        expect(bytes.includes(Buffer.from(m))).toBe(false);
    }
    // No temporary files left behind.
    const tmp = path.join(dataDir, "exports", ".tmp");
    expect(readdirSync(tmp, { withFileTypes: true }).filter((d) => d.name.includes("noassign"))).toEqual([]);
  });

  it("writes an audit entry for the forward", async () => {
    const entries = await new AuditLog(redis, prefix).list({ limit: 10 });
    const e = entries.find((x) => x.action === "noassign-forward");
    expect(e).toMatchObject({ user: "alice", project: "PROJ", participant: "PROJ_0042", event: "baseline" });
    expect(e?.detail).toMatch(/to clinic: 3\/3 sent/);
  });

  it("audits NoAssign downloads and export requests too", async () => {
    const body = { studyInstanceUid: study.studyInstanceUid, project: "PROJ", participant: "PROJ_0043" };
    expect((await fetch(`${web.url}/api/noassign`, post("alice", body))).status).toBe(200);
    expect((await call("alice", "/api/exports", { ...body, layout: "PURE" })).status).toBe(202);
    const entries = await new AuditLog(redis, prefix).list({ limit: 10 });
    expect(entries.find((x) => x.action === "noassign-download")).toMatchObject({
      user: "alice",
      project: "PROJ",
      participant: "PROJ_0043",
      study: study.studyInstanceUid,
    });
    expect(entries.find((x) => x.action === "export")?.detail).toMatch(/layout PURE/);
  });

  it("refuses projects not granted (404), unknown destinations and bad participants (400)", async () => {
    const before = readdirSync(peerDir).length;
    const denied = await call("bob", "/api/noassign/forward", {
      studyInstanceUid: study.studyInstanceUid,
      ...ask,
    });
    expect(denied.status).toBe(404);
    const unknown = await call("alice", "/api/noassign/forward", {
      studyInstanceUid: study.studyInstanceUid,
      ...ask,
      destination: "research-pacs",
    });
    expect(unknown.status).toBe(400);
    const bad = await call("alice", "/api/noassign/forward", {
      studyInstanceUid: study.studyInstanceUid,
      ...ask,
      participant: "nope",
    });
    expect(bad.status).toBe(400);
    expect(readdirSync(peerDir).length).toBe(before);
  });

  it("refuses a cookie session without the CSRF token (403)", async () => {
    const login = await fetch(`${web.url}/api/session`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Origin: web.url },
      body: JSON.stringify({ user: "alice", password: PW.alice }),
    });
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0]!;
    const r = await fetch(`${web.url}/api/noassign/forward`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Cookie: cookie, Origin: web.url },
      body: JSON.stringify({ studyInstanceUid: study.studyInstanceUid, ...ask }),
    });
    expect(r.status).toBe(403);
  });

  it("documents the NoAssign routes in /api/openapi.json", async () => {
    const doc = (await call("alice", "/api/openapi.json")).json as {
      paths: Record<string, Record<string, unknown>>;
    };
    expect(Object.keys(doc.paths["/api/noassign/forward"] ?? {})).toContain("post");
    expect(Object.keys(doc.paths["/api/noassign/destinations"] ?? {})).toContain("get");
  });
});
