/** Web slide upload (/api/wsi/uploads) against the running web server and real Redis. */
import { request } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createRedis } from "../../src/queues/connection.js";
import { createQueue, QUEUES } from "../../src/queues/index.js";
import { hashPassword } from "../../src/web/password.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { uploadStore } from "../../src/wsi/uploads.js";
import { deletePrefix, REDIS_URL, testConfig, uniquePrefix } from "../web/helpers.js";
import { vipsPyramid } from "./support/fixtures.js";

const PW = "alice-pw-1";
const prefix = uniquePrefix();
const dataDir = mkdtempSync(path.join(tmpdir(), "fiona-wsi-web-"));
const cfg = testConfig(prefix, {
  dataDir,
  secret: "wsi-web-secret-0123456789",
  projects: [{ name: "PROJ", participantPattern: "PROJ_[0-9]{4}", events: ["baseline"] }, { name: "OTHER" }],
  web: { users: [{ name: "alice", passwordHash: hashPassword(PW, { N: 2 ** 10 }), projects: ["PROJ"] }] },
});
let redis: Redis;
let web: WebHandle;
let auth: { cookie: string; csrf: string };

async function api(pathname: string, init: { method?: string; json?: unknown; body?: Buffer } = {}) {
  const headers: Record<string, string> = { Cookie: auth.cookie, "X-CSRF-Token": auth.csrf };
  let body: string | Buffer | undefined;
  if (init.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(init.json);
  } else if (init.body) {
    headers["Content-Type"] = "application/octet-stream";
    body = init.body;
  }
  const res = await fetch(`${web.url}${pathname}`, { method: init.method ?? "GET", headers, body });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Send the first `sent` bytes of a PUT declaring `chunk.length`, then drop the connection. */
async function interruptedPut(id: string, offset: number, chunk: Buffer, sent: number): Promise<void> {
  const url = new URL(`${web.url}/api/wsi/uploads/${id}?offset=${offset}`);
  await new Promise<void>((resolve) => {
    const req = request(url, {
      method: "PUT",
      headers: {
        Cookie: auth.cookie,
        "X-CSRF-Token": auth.csrf,
        "Content-Type": "application/octet-stream",
        "Content-Length": String(chunk.length),
      },
    });
    req.on("error", () => resolve());
    req.on("close", () => resolve());
    req.write(chunk.subarray(0, sent), () => setTimeout(() => req.destroy(), 200));
  });
}

const slide = { project: "PROJ", participant: "PROJ_0001", event: "baseline", extension: ".tif" };

beforeAll(async () => {
  redis = createRedis({ url: REDIS_URL }, "producer");
  web = await startWeb({ config: cfg, connection: redis, port: 0, host: "127.0.0.1" });
  const res = await fetch(`${web.url}/api/session`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: "alice", password: PW }),
  });
  expect(res.status).toBe(200);
  auth = {
    cookie: res.headers.get("set-cookie")!.split(";")[0]!,
    csrf: ((await res.json()) as { csrfToken: string }).csrfToken,
  };
});

afterAll(async () => {
  await web?.close();
  await deletePrefix(redis, prefix);
  redis.disconnect();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("web slide upload", () => {
  it("uploads a pyramid in chunks, resumes after an interrupted chunk and queues the wsi job", async () => {
    const file = readFileSync(vipsPyramid(dataDir, { width: 1200, height: 900 }));
    const chunk = Math.ceil(file.length / 3);
    const created = await api("/api/wsi/uploads", {
      method: "POST",
      json: { ...slide, size: file.length, metadata: { stain: "H&E", patho_block_nr: "A1" } },
    });
    expect(created).toEqual({ status: 201, body: { id: expect.any(String), offset: 0 } });
    const id = created.body.id as string;

    const first = await api(`/api/wsi/uploads/${id}?offset=0`, {
      method: "PUT",
      body: file.subarray(0, chunk),
    });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ state: "receiving", offset: chunk, size: file.length });

    // The second chunk breaks off part-way: the bytes that arrived stay on disk.
    await interruptedPut(id, chunk, file.subarray(chunk, 2 * chunk), 1000);
    await vi.waitFor(async () =>
      expect((await api(`/api/wsi/uploads/${id}`)).body.offset).toBeGreaterThan(chunk),
    );
    const stale = await api(`/api/wsi/uploads/${id}?offset=${chunk}`, {
      method: "PUT",
      body: file.subarray(chunk, 2 * chunk),
    });
    expect(stale.status).toBe(409);
    const status = await api(`/api/wsi/uploads/${id}`);
    expect(status.body).toMatchObject({ id, state: "receiving", size: file.length });
    const resumeAt = status.body.offset as number;
    expect(stale.body.offset).toBe(resumeAt);
    expect(resumeAt).toBeGreaterThan(chunk);
    expect(resumeAt).toBeLessThan(2 * chunk);

    for (let at = resumeAt; at < file.length; at = Math.min(at + chunk, file.length)) {
      const r = await api(`/api/wsi/uploads/${id}?offset=${at}`, {
        method: "PUT",
        body: file.subarray(at, at + chunk),
      });
      expect(r.status).toBe(200);
    }
    const done = await api(`/api/wsi/uploads/${id}`);
    expect(done.body).toMatchObject({ state: "complete", offset: file.length });

    const record = await uploadStore(cfg).get(id);
    expect(record).toMatchObject({ project: "PROJ", participant: "PROJ_0001", event: "baseline" });
    expect(record!.metadata).toEqual({ stain: "H&E", block: "A1" });
    expect(readFileSync(uploadStore(cfg).slidePath(record!)).equals(file)).toBe(true);

    const queue = createQueue(QUEUES.wsi, redis, prefix);
    const job = await queue.getJob(id);
    await queue.close();
    expect(job?.data).toEqual({ uploadId: id });

    const list = await api("/api/wsi/uploads");
    expect(list.body).toEqual([expect.objectContaining({ id, state: "complete", project: "PROJ" })]);
    expect(JSON.stringify(list.body)).not.toContain("slide.tif");
  });

  it("refuses a project without a grant with 403", async () => {
    const r = await api("/api/wsi/uploads", {
      method: "POST",
      json: { ...slide, project: "OTHER", size: 10 },
    });
    expect(r.status).toBe(403);
  });

  it("names the bad field with 400", async () => {
    const bad = await api("/api/wsi/uploads", {
      method: "POST",
      json: { ...slide, participant: "Jane Doe", size: 10 },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/participant/);
    const ext = await api("/api/wsi/uploads", {
      method: "POST",
      json: { ...slide, extension: ".exe", size: 10 },
    });
    expect(ext.status).toBe(400);
    expect(ext.body.error).toMatch(/^extension/);
    const meta = await api("/api/wsi/uploads", {
      method: "POST",
      json: { ...slide, size: 10, metadata: { colour: "x" } },
    });
    expect(meta.status).toBe(400);
    expect(meta.body.error).toMatch(/colour/);
  });
});
