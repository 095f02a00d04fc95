import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createRedis } from "../../src/queues/connection.js";
import { getQueueCounts } from "../../src/queues/counts.js";
import { ALL_QUEUES, createQueue, QUEUES } from "../../src/queues/index.js";
import { startWeb, type ReadinessReport, type WebHandle } from "../../src/web/server.js";
import {
  asTestAdmin,
  captureLogger,
  deletePrefix,
  REDIS_URL,
  testAdminUser,
  testConfig,
  uniquePrefix,
} from "./helpers.js";

const prefix = uniquePrefix();
const config = { ...testConfig(prefix, { web: { users: [testAdminUser] } }), httpPort: 0 };
/** A script signed in as the admin; writes send JSON, as the CSRF rules want of scripts. */
const asAdmin = { ...asTestAdmin, "Content-Type": "application/json" };
const { logger } = captureLogger();
let redis: Redis;
const handles: WebHandle[] = [];

async function start(opts: Partial<Parameters<typeof startWeb>[0]> = {}): Promise<WebHandle> {
  const web = await startWeb({ config, connection: redis, logger, ...opts });
  handles.push(web);
  return web;
}

beforeAll(async () => {
  redis = createRedis({ url: REDIS_URL }, "producer");
  await new Promise<void>((resolve, reject) => {
    redis.once("ready", () => resolve());
    redis.once("error", reject);
  });
});

afterEach(async () => {
  await Promise.all(handles.splice(0).map((h) => h.close()));
});

afterAll(async () => {
  await deletePrefix(redis, prefix);
  redis.disconnect();
});

describe("web server", () => {
  it("listens on config.httpPort 0 and reports the real port", async () => {
    const web = await start();
    expect(web.port).toBeGreaterThan(0);
    expect(web.url).toBe(`http://127.0.0.1:${web.port}`);
  });

  it("answers /healthz with 200 and security headers", async () => {
    const web = await start();
    const res = await fetch(`${web.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
    expect(res.headers.get("x-powered-by")).toBeNull();
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
  });

  it("answers unknown paths with a JSON 404", async () => {
    const web = await start();
    const res = await fetch(`${web.url}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: "not found" });
  });

  it("/readyz is 200 while Redis answers and the callback is ready", async () => {
    const web = await start({
      readiness: async () => ({
        ready: true,
        checks: {
          workers: { ok: true, detail: [{ queue: "ingest", running: true, paused: false }] },
          receiver: { ok: true, detail: "listening" },
        },
      }),
    });
    const res = await fetch(`${web.url}/readyz`);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await res.json()).toEqual({
      status: "ready",
      checks: {
        redis: { ok: true },
        workers: { ok: true, detail: [{ queue: "ingest", running: true, paused: false }] },
        receiver: { ok: true, detail: "listening" },
        queues: { ok: true },
      },
    });
  });

  it("/readyz is 200 without a callback", async () => {
    const web = await start();
    const res = await fetch(`${web.url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: "ready",
      checks: { redis: { ok: true }, queues: { ok: true } },
    });
  });

  it("/readyz is 503 when the callback says not ready, listing each check", async () => {
    const web = await start({
      readiness: async (): Promise<ReadinessReport> => ({
        ready: false,
        checks: { workers: { ok: false, detail: "ingest paused" }, receiver: { ok: true } },
      }),
    });
    const res = await fetch(`${web.url}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      status: "not ready",
      checks: {
        redis: { ok: true },
        workers: { ok: false, detail: "ingest paused" },
        receiver: { ok: true },
        queues: { ok: true },
      },
    });
  });

  it("/readyz is 503 when the callback throws or hangs", async () => {
    const throwing = await start({
      readiness: async () => {
        throw new Error("secret-ish internal detail");
      },
    });
    const res1 = await fetch(`${throwing.url}/readyz`);
    expect(res1.status).toBe(503);
    const body1 = await res1.text();
    expect(body1).not.toContain("secret-ish");
    expect((JSON.parse(body1) as { checks: Record<string, { ok: boolean }> }).checks.readiness?.ok).toBe(
      false,
    );

    const hanging = await start({ readiness: () => new Promise(() => {}), readinessTimeoutMs: 200 });
    const res2 = await fetch(`${hanging.url}/readyz`);
    expect(res2.status).toBe(503);
    expect(((await res2.json()) as { checks: unknown }).checks).toMatchObject({
      redis: { ok: true },
      readiness: { ok: false },
    });
  });

  it("/readyz is 503 when the connection points at a dead Redis", async () => {
    const dead = createRedis({ url: "redis://127.0.0.1:1" }, "producer");
    dead.on("error", () => {});
    try {
      const web = await start({ connection: dead, readiness: async () => ({ ready: true, checks: {} }) });
      const t0 = Date.now();
      const res = await fetch(`${web.url}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({
        status: "not ready",
        checks: { redis: { ok: false, detail: "not reachable" } },
      });
      expect(Date.now() - t0).toBeLessThan(1500);
      // /healthz does not depend on Redis.
      expect((await fetch(`${web.url}/healthz`)).status).toBe(200);
      // /api/status fails cleanly instead of hanging.
      const status = await fetch(`${web.url}/api/status`, { headers: asAdmin });
      expect(status.status).toBe(503);
    } finally {
      await Promise.all(handles.splice(0).map((h) => h.close()));
      dead.disconnect();
    }
  });

  it("creates and closes its own connection when none is given", async () => {
    const web = await startWeb({ config, logger, port: 0 });
    try {
      const res = await fetch(`${web.url}/readyz`);
      expect(res.status).toBe(200);
    } finally {
      await web.close();
    }
    await expect(fetch(`${web.url}/healthz`)).rejects.toThrow();
  });

  it("serves the Bull Board UI and its API lists every queue with counts", async () => {
    const web = await start();
    const html = await fetch(`${web.url}/admin/queues`, { headers: asAdmin });
    expect(html.status).toBe(200);
    expect(html.headers.get("content-type")).toMatch(/text\/html/);
    expect(html.headers.get("x-powered-by")).toBeNull();
    const page = await html.text();
    expect(page).toContain('<base href="/admin/queues/"');
    expect(page).toContain("<title>FIONA</title>");

    const ingest = createQueue(QUEUES.ingest, redis, prefix);
    try {
      await ingest.add("file", {
        path: "/tmp/x.dcm",
        callingAe: "SCU",
        calledAe: "FIONA",
        peer: "127.0.0.1",
        receivedAt: new Date().toISOString(),
      });
    } finally {
      await ingest.close();
    }

    const api = await fetch(`${web.url}/admin/queues/api/queues`, { headers: asAdmin });
    expect(api.status).toBe(200);
    expect(api.headers.get("cache-control")).toBe("no-store");
    const body = (await api.json()) as { queues: Array<{ name: string; counts: Record<string, number> }> };
    expect(body.queues.map((q) => q.name).sort()).toEqual([...ALL_QUEUES].sort());
    const byName = new Map(body.queues.map((q) => [q.name, q]));
    expect(byName.get("ingest")?.counts.waiting).toBe(1);
    expect(byName.get("arrival")?.counts.waiting).toBe(0);

    // A static asset of the UI is reachable too.
    const asset = /static\/js\/main[^"']*\.js/.exec(page)?.[0];
    expect(asset).toBeDefined();
    const js = await fetch(`${web.url}/admin/queues/${asset}`, { headers: asAdmin });
    expect(js.status).toBe(200);
    expect(js.headers.get("cache-control")).not.toBe("no-store");
  });

  it("refuses cross-site dashboard actions but allows same-origin ones", async () => {
    const web = await start();
    const pauseUrl = `${web.url}/admin/queues/api/queues/${QUEUES.studyArrived}/pause`;
    const cross = await fetch(pauseUrl, {
      method: "PUT",
      headers: { ...asAdmin, "sec-fetch-site": "cross-site" },
    });
    expect(cross.status).toBe(403);
    const foreignOrigin = await fetch(pauseUrl, {
      method: "PUT",
      headers: { ...asAdmin, origin: "http://evil.example" },
    });
    expect(foreignOrigin.status).toBe(403);
    expect((await getQueueCounts(redis, prefix))[QUEUES.studyArrived].isPaused).toBe(false);

    const same = await fetch(pauseUrl, {
      method: "PUT",
      headers: { ...asAdmin, "sec-fetch-site": "same-origin" },
    });
    expect(same.status).toBe(200);
    expect((await getQueueCounts(redis, prefix))[QUEUES.studyArrived].isPaused).toBe(true);
    const resume = await fetch(`${web.url}/admin/queues/api/queues/${QUEUES.studyArrived}/resume`, {
      method: "PUT",
      headers: { ...asAdmin, origin: web.url },
    });
    expect(resume.status).toBe(200);
    expect((await getQueueCounts(redis, prefix))[QUEUES.studyArrived].isPaused).toBe(false);
  });

  it("read-only mode refuses dashboard actions", async () => {
    const web = await start({ readOnly: true });
    const res = await fetch(`${web.url}/admin/queues/api/queues/${QUEUES.arrival}/pause`, {
      method: "PUT",
      headers: asAdmin,
    });
    expect(res.status).toBe(405);
  });
});

describe("queue counts", () => {
  const countsPrefix = uniquePrefix();
  afterAll(async () => {
    await deletePrefix(redis, countsPrefix);
  });

  it("getQueueCounts and /api/status reflect added jobs", async () => {
    const cfg = { ...testConfig(countsPrefix, { web: { users: [testAdminUser] } }), httpPort: 0 };
    const web = await start({ config: cfg });
    const empty = await getQueueCounts(redis, countsPrefix);
    expect(Object.keys(empty).sort()).toEqual([...ALL_QUEUES].sort());
    for (const c of Object.values(empty)) {
      expect(c).toEqual({
        waiting: 0,
        active: 0,
        delayed: 0,
        failed: 0,
        completed: 0,
        prioritized: 0,
        waitingChildren: 0,
        paused: 0,
        isPaused: false,
      });
    }

    const ingest = createQueue(QUEUES.ingest, redis, countsPrefix);
    const arrival = createQueue(QUEUES.arrival, redis, countsPrefix);
    const arrived = createQueue(QUEUES.studyArrived, redis, countsPrefix);
    try {
      const job = {
        path: "/p",
        callingAe: "A",
        calledAe: "B",
        peer: "127.0.0.1",
        receivedAt: "2026-01-01T00:00:00Z",
      };
      await ingest.add("file", job);
      await ingest.add("file", { ...job, path: "/q" });
      await arrival.add("arrival", { studyInstanceUid: "1.2.3" }, { delay: 60_000 });
      await arrived.pause();
      await arrived.add("arrived", {
        studyInstanceUid: "1.2.3",
        arrivedAt: "2026-01-01T00:00:00Z",
        arrival: 1,
        seriesCount: 1,
        fileCount: 2,
      });
    } finally {
      await Promise.all([ingest.close(), arrival.close(), arrived.close()]);
    }

    const res = await fetch(`${web.url}/api/status`, { headers: asAdmin });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = (await res.json()) as { queues: Awaited<ReturnType<typeof getQueueCounts>> };
    expect(body.queues.ingest).toMatchObject({ waiting: 2, delayed: 0, paused: 0, isPaused: false });
    expect(body.queues.arrival).toMatchObject({ waiting: 0, delayed: 1 });
    expect(body.queues["study-arrived"]).toMatchObject({ waiting: 1, paused: 1, isPaused: true });

    expect(await getQueueCounts(redis, countsPrefix)).toEqual(body.queues);
  });
});
