/**
 * Every door of the web server × every role, over real HTTP against a real Redis: the pages, the API,
 * Bull Board's UI and API, /api/status and /metrics. Anonymous callers get nothing but the sign-in
 * page; viewers read; operators assign and retry or promote jobs of their projects; admins do anything.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QUEUES } from "../../src/queues/index.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { captureLogger, deletePrefix, REDIS_URL, testConfig, uniquePrefix } from "./helpers.js";
import { authOf, CALLERS, failJobs, jobState, roleUsers, signIn, type Caller } from "./roles-kit.js";

const prefix = uniquePrefix();
const METRICS_TOKEN = "prometheus-scrape-token-0123456789abcdef";
const { logger } = captureLogger();
let redis: Redis;
let web: WebHandle;

/** Per caller, a failed PROJ transfer job, a delayed PROJ job, and a failed export job. */
const jobs: Record<"retry" | "promote" | "remove" | "edit", Record<Caller, string>> = {
  retry: {} as never,
  promote: {} as never,
  remove: {} as never,
  edit: {} as never,
};

beforeAll(async () => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const cfg = testConfig(prefix, {
    secret: "doors-secret-0123456789",
    projects: [{ name: "PROJ" }, { name: "OTHER" }],
    web: { users: roleUsers(), metricsToken: METRICS_TOKEN },
  });
  web = await startWeb({ config: cfg, connection: redis, logger, port: 0, host: "127.0.0.1" });
  const transfer = (n: number) => ({
    requestId: `r${n}`,
    run: 1,
    studyInstanceUid: "1.2.3",
    project: "PROJ",
    participant: "P1",
  });
  const delayed = new Queue(QUEUES.send, { connection: redis, prefix });
  for (const [i, caller] of CALLERS.entries()) {
    jobs.retry[caller] = (await failJobs(prefix, QUEUES.transfer, [transfer(i)]))[0]!;
    jobs.promote[caller] = (await delayed.add("test", transfer(i), { delay: 3_600_000 })).id!;
    const [remove, edit] = await failJobs(prefix, QUEUES.export, [
      { exportId: `e${i}` },
      { exportId: `f${i}` },
    ]);
    jobs.remove[caller] = remove!;
    jobs.edit[caller] = edit!;
  }
  await delayed.close();
});

afterAll(async () => {
  await web?.close();
  await deletePrefix(redis, prefix);
  redis.disconnect();
});

interface Door {
  name: string;
  method: string;
  path: (caller: Caller) => string;
  body?: string;
  type?: string;
  expect: [anonymous: number, viewer: number, operator: number, admin: number];
}

const board = (p: string) => `/admin/queues/api/queues/${p}`;

const DOORS: Door[] = [
  { name: "Assign page", method: "GET", path: () => "/assign/", expect: [200, 200, 200, 200] },
  { name: "Attach page", method: "GET", path: () => "/attach/", expect: [200, 200, 200, 200] },
  { name: "API read", method: "GET", path: () => "/api/projects", expect: [401, 200, 200, 200] },
  {
    name: "API write (coupling preview)",
    method: "POST",
    path: () => "/api/coupling?dryRun=true",
    type: "text/csv",
    body: "AccessionNumber,ProjectName,subjectid,eventname\nACC-1,PROJ,P-1,\n",
    expect: [401, 403, 200, 200],
  },
  { name: "/api/status", method: "GET", path: () => "/api/status", expect: [401, 200, 200, 200] },
  { name: "/metrics", method: "GET", path: () => "/metrics", expect: [401, 200, 200, 200] },
  { name: "Bull Board UI", method: "GET", path: () => "/admin/queues", expect: [401, 200, 200, 200] },
  {
    name: "Bull Board UI asset",
    method: "GET",
    path: () => "/admin/queues/static/favicon.ico",
    expect: [401, 200, 200, 200],
  },
  { name: "Bull Board API read", method: "GET", path: () => board(""), expect: [401, 200, 200, 200] },
  {
    name: "Bull Board retry",
    method: "PUT",
    path: (c) => board(`${QUEUES.transfer}/${jobs.retry[c]}/retry`),
    expect: [401, 403, 204, 204],
  },
  {
    name: "Bull Board promote",
    method: "PUT",
    path: (c) => board(`${QUEUES.send}/${jobs.promote[c]}/promote`),
    expect: [401, 403, 204, 204],
  },
  {
    name: "Bull Board remove",
    method: "PUT",
    path: (c) => board(`${QUEUES.export}/${jobs.remove[c]}/clean`),
    expect: [401, 403, 403, 204],
  },
  {
    name: "Bull Board edit data",
    method: "PATCH",
    path: (c) => board(`${QUEUES.export}/${jobs.edit[c]}/update-data`),
    body: JSON.stringify({ jobData: { exportId: "edited" } }),
    expect: [401, 403, 403, 200],
  },
  {
    name: "Bull Board add",
    method: "POST",
    path: () => board(`${QUEUES.cleanup}/add`),
    body: JSON.stringify({ name: "added", data: { kind: "stale-links", dryRun: true } }),
    expect: [401, 403, 403, 200],
  },
  {
    name: "Bull Board pause",
    method: "PUT",
    path: () => board(`${QUEUES.reclassify}/pause`),
    expect: [401, 403, 403, 200],
  },
  {
    name: "Bull Board clean",
    method: "PUT",
    path: () => board(`${QUEUES.heartbeat}/clean/completed`),
    expect: [401, 403, 403, 200],
  },
];

function rawGet(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; location?: string }> {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (res) => {
      res.resume();
      resolve({
        status: res.statusCode ?? 0,
        ...(res.headers.location ? { location: res.headers.location } : {}),
      });
    })
      .on("error", reject)
      .end();
  });
}

async function knock(door: Door, caller: Caller): Promise<number> {
  const write = door.method !== "GET";
  const res = await fetch(`${web.url}${door.path(caller)}`, {
    method: door.method,
    redirect: "manual",
    headers: { ...authOf(caller), ...(write ? { "Content-Type": door.type ?? "application/json" } : {}) },
    ...(door.body !== undefined ? { body: door.body } : write ? { body: "{}" } : {}),
  });
  await res.arrayBuffer();
  return res.status;
}

describe("doors × roles", () => {
  it("lets each role through exactly the doors it may use", async () => {
    const got: Record<string, number[]> = {};
    const want: Record<string, number[]> = {};
    for (const door of DOORS) {
      want[door.name] = door.expect;
      got[door.name] = [];
      for (const caller of CALLERS) got[door.name]!.push(await knock(door, caller));
    }
    expect(got).toEqual(want);
    // The refused actions changed nothing; the allowed ones did.
    expect(await jobState(prefix, QUEUES.transfer, jobs.retry.viewer)).toBe("failed");
    expect(await jobState(prefix, QUEUES.transfer, jobs.retry.operator)).toBe("waiting");
    expect(await jobState(prefix, QUEUES.send, jobs.promote.viewer)).toBe("delayed");
    expect(await jobState(prefix, QUEUES.send, jobs.promote.operator)).toBe("waiting");
    expect(await jobState(prefix, QUEUES.export, jobs.remove.operator)).toBe("failed");
    expect(await jobState(prefix, QUEUES.export, jobs.remove.admin)).toBe("absent");
  });

  it("lets an operator retry only jobs of granted projects, and jobs that name no project", async () => {
    const [other, none] = [
      ...(await failJobs(prefix, QUEUES.deidentify, [{ requestId: "o", run: 1, project: "OTHER" }])),
      ...(await failJobs(prefix, QUEUES.ingest, [{ path: "/tmp/x.dcm" }])),
    ];
    const retry = (queue: string, id: string) =>
      fetch(`${web.url}${board(`${queue}/${id}/retry`)}`, {
        method: "PUT",
        headers: { ...authOf("operator"), "Content-Type": "application/json" },
      });
    const refused = await retry(QUEUES.deidentify, other!);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ error: "project OTHER is not granted to you" });
    expect((await retry(QUEUES.ingest, none!)).status).toBe(204);
    expect(await jobState(prefix, QUEUES.deidentify, other!)).toBe("failed");
  });

  it("takes Prometheus' bearer token on /metrics, and only the right one", async () => {
    const scrape = (authorization?: string) =>
      fetch(`${web.url}/metrics`, authorization ? { headers: { authorization } } : {});
    const ok = await scrape(`Bearer ${METRICS_TOKEN}`);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("fiona_queue_jobs");
    const wrong = await scrape(`Bearer ${METRICS_TOKEN.slice(0, -1)}x`);
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toBe('Bearer realm="FIONA"');
    expect((await scrape()).status).toBe(401);
    // The token opens /metrics only.
    const status = await fetch(`${web.url}/api/status`, {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    expect(status.status).toBe(401);
  });

  it("reads Prometheus' token from web.metricsTokenFile", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "fiona-metrics-token-"));
    const tokenFile = path.join(dir, "token");
    writeFileSync(tokenFile, `${METRICS_TOKEN}-from-file\n`, { mode: 0o600 });
    const other = await startWeb({
      config: testConfig(prefix, { web: { users: roleUsers(), metricsTokenFile: tokenFile } }),
      connection: redis,
      logger,
      port: 0,
      host: "127.0.0.1",
    });
    try {
      const scrape = (token: string) =>
        fetch(`${other.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      expect((await scrape(`${METRICS_TOKEN}-from-file`)).status).toBe(200);
      expect((await scrape(METRICS_TOKEN)).status).toBe(401);
    } finally {
      await other.close();
    }
    writeFileSync(tokenFile, "short\n");
    await expect(
      startWeb({
        config: testConfig(prefix, { web: { users: roleUsers(), metricsTokenFile: tokenFile } }),
        connection: redis,
        logger,
        port: 0,
      }),
    ).rejects.toThrow(/web\.metricsTokenFile: the token in .* needs at least 32 characters/);
  });

  it("opens Bull Board, /metrics and /api/status with the Assign page's session cookie", async () => {
    const { cookie } = await signIn(web.url, "viewer");
    for (const p of ["/admin/queues", board(""), "/metrics", "/api/status"]) {
      const res = await fetch(`${web.url}${p}`, { headers: { cookie } });
      expect(res.status, p).toBe(200);
    }
  });

  it("sends a browser without a session from Bull Board to the sign-in page, and scripts get a bare 401", async () => {
    // Node's fetch sets Sec-Fetch-Mode itself, so the page load is a plain HTTP request.
    const page = await rawGet(`${web.url}/admin/queues/queue/transfer?status=failed`, {
      "Sec-Fetch-Mode": "navigate",
      "Sec-Fetch-Site": "none",
      Accept: "text/html",
    });
    expect(page.status).toBe(302);
    expect(page.location).toBe(
      `/assign/?next=${encodeURIComponent("/admin/queues/queue/transfer?status=failed")}`,
    );
    // Bull Board's own calls after the session ended: no challenge, so no browser password dialog.
    const script = await fetch(`${web.url}${board("")}`, {
      headers: { "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin" },
    });
    expect(script.status).toBe(401);
    expect(script.headers.get("www-authenticate")).toBeNull();
    // Programs (curl, Prometheus without its token) are asked for basic auth.
    const program = await fetch(`${web.url}${board("")}`);
    expect(program.headers.get("www-authenticate")).toMatch(/^Basic realm="FIONA"/);
  });
});
