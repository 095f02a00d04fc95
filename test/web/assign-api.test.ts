import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig, FionaConfigInput } from "../../src/config/schema.js";
import { SitePaths } from "../../src/paths.js";
import { createRedis } from "../../src/queues/connection.js";
import { createQueue, QUEUES } from "../../src/queues/index.js";
import { identifierKey } from "../../src/registry/identifier-key.js";
import { StudyRegistry } from "../../src/registry/studies.js";
import { TransferRegistry } from "../../src/registry/transfers.js";
import { requestId } from "../../src/transfer/request.js";
import { hashPassword } from "../../src/web/password.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { SessionManager, sessionKey } from "../../src/web/session.js";
import { basic, captureLogger, deletePrefix, REDIS_URL, testConfig, uniquePrefix } from "./helpers.js";

const SECRET = "assign-api-secret-0123456789";
const PW = { alice: "alice-pw-1", bob: "bob-pw-2", root: "root-pw-3" };
const HASH = {
  alice: hashPassword(PW.alice, { N: 2 ** 10 }),
  bob: hashPassword(PW.bob, { N: 2 ** 10 }),
  root: hashPassword(PW.root, { N: 2 ** 10 }),
};
const STUDY_A = "1.2.826.0.1.3680043.10.1.1";
const STUDY_B = "1.2.826.0.1.3680043.10.1.2";
const SERIES = (study: string) => `${study}.1`;

const prefix = uniquePrefix();
const dataDir = mkdtempSync(path.join(tmpdir(), "fiona-assign-api-"));
const { logger, lines } = captureLogger();
let redis: Redis;
const servers: WebHandle[] = [];
let web: WebHandle;

function config(extra: FionaConfigInput = {}): FionaConfig {
  return testConfig(prefix, {
    dataDir,
    secret: SECRET,
    projects: [
      {
        name: "PROJ",
        participantPattern: "PROJ_[0-9]{4}",
        events: ["baseline", "followup"],
        destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: 11199 },
      },
      { name: "OTHER", destination: { aeTitle: "OTHERPACS", host: "10.0.0.9", port: 104 } },
    ],
    ...extra,
    web: {
      users: [
        { name: "alice", passwordHash: HASH.alice, projects: ["PROJ"] },
        { name: "bob", passwordHash: HASH.bob, projects: ["OTHER"] },
        { name: "root", passwordHash: HASH.root, admin: true },
      ],
      ...extra.web,
    },
  });
}

async function start(extra: FionaConfigInput = {}): Promise<WebHandle> {
  const h = await startWeb({ config: config(extra), connection: redis, logger, port: 0, host: "127.0.0.1" });
  servers.push(h);
  return h;
}

interface Reply {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

async function call(
  base: WebHandle,
  pathname: string,
  opts: {
    method?: string;
    headers?: Record<string, string>;
    body?: unknown;
    cookie?: string;
    csrf?: string;
  } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.cookie) headers.Cookie = opts.cookie;
  if (opts.csrf) headers["X-CSRF-Token"] = opts.csrf;
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
    headers["Content-Type"] ??= "application/json";
  }
  const res = await fetch(`${base.url}${pathname}`, {
    method: opts.method ?? "GET",
    headers,
    body,
    redirect: "manual",
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

async function login(base: WebHandle, user: keyof typeof PW) {
  const r = await call(base, "/api/session", { method: "POST", body: { user, password: PW[user] } });
  expect(r.status).toBe(200);
  const cookie = r.headers.get("set-cookie")!.split(";")[0]!;
  return {
    cookie,
    csrf: (r.body as { csrfToken: string }).csrfToken,
    body: r.body as Record<string, unknown>,
  };
}

const asBasic = (user: keyof typeof PW) => ({ Authorization: basic(user, PW[user]) });

function writeStudy(uid: string, summary: Record<string, string>) {
  const paths = new SitePaths(dataDir);
  const dir = paths.rawSeriesDir(uid, SERIES(uid));
  mkdirSync(dir, { recursive: true });
  for (const f of ["1.2.3.1", "1.2.3.2"]) writeFileSync(path.join(dir, f), "not really DICOM");
  writeFileSync(
    paths.seriesJson(uid, SERIES(uid)),
    JSON.stringify({ ...summary, NumFiles: "2", ClassifyType: ["CT"] }),
  );
}

beforeAll(async () => {
  redis = createRedis({ url: REDIS_URL }, "producer");
  await new Promise<void>((resolve, reject) => {
    redis.once("ready", () => resolve());
    redis.once("error", reject);
  });
  const studies = new StudyRegistry(redis, prefix, { identifierKey: () => identifierKey(config()) });
  const seed = async (uid: string, ae: string, date: string, description: string, accession: string) => {
    await studies.touch({
      studyInstanceUid: uid,
      callingAe: ae,
      calledAe: "FIONA",
      peer: "10.0.0.5",
      studyDate: date,
      studyTime: "101500",
      studyDescription: description,
      accessionNumber: accession,
      modalities: ["CT"],
    });
    await studies.recordArrival(uid, [
      {
        seriesInstanceUid: SERIES(uid),
        seriesNumber: "1",
        seriesDescription: "axial",
        modality: "CT",
        classifyType: ["CT"],
        numFiles: 2,
      },
    ]);
    writeStudy(uid, { PatientName: "DOE^JANE", PatientID: `PID-${accession}`, AccessionNumber: accession });
  };
  await seed(STUDY_A, "CT_SCANNER", "20240102", "CT Abdomen", "ACC-A");
  await seed(STUDY_B, "MR_SCANNER", "20240105", "MR Head", "ACC-B");
  const transfers = new TransferRegistry(redis, prefix);
  const other = { studyInstanceUid: STUDY_B, project: "OTHER", participant: "O-1", requestedBy: "bob" };
  await transfers.startRun(requestId(other), other, 2);
  await transfers.finishRun(requestId(other), {
    status: "done",
    filesSent: 2,
    filesFailed: 0,
    filesDropped: 0,
    durationMs: 5,
  });
  web = await start();
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await deletePrefix(redis, prefix);
  redis.disconnect();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("Assign page and OpenAPI", () => {
  it("serves the page with a strict CSP, and redirects / to it", async () => {
    const root = await call(web, "/");
    expect(root.status).toBe(302);
    expect(root.headers.get("location")).toBe("/assign/");
    const page = await call(web, "/assign/");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(page.text).toContain('<script type="module" src="app.js"></script>');
    const csp = page.headers.get("content-security-policy")!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe-inline");
    for (const f of ["app.js", "style.css"]) expect((await call(web, `/assign/${f}`)).status).toBe(200);
    expect((await call(web, "/assign/../../package.json")).status).not.toBe(200);
  });

  it("documents every route in /api/openapi.json", async () => {
    const r = await call(web, "/api/openapi.json");
    expect(r.status).toBe(200);
    const doc = r.body as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toBe("3.1.0");
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`),
    );
    for (const route of [
      "GET /api/session",
      "POST /api/session",
      "DELETE /api/session",
      "GET /api/projects",
      "GET /api/projects/{project}/participants",
      "GET /api/projects/{project}/participants/check",
      "GET /api/studies",
      "GET /api/studies/{studyInstanceUid}",
      "GET /api/transfers",
      "POST /api/transfers",
      "GET /api/transfers/preview",
      "GET /api/transfers/{requestId}",
      "POST /api/transfers/{requestId}/retry",
      "POST /api/coupling",
      "GET /api/audit",
    ]) {
      expect(documented).toContain(route);
    }
  });
});

describe("sign-in and sessions", () => {
  it("asks unauthenticated callers to sign in, without a basic-auth challenge", async () => {
    const r = await call(web, "/api/session");
    expect(r.status).toBe(401);
    expect(r.body).toEqual({ error: "sign in required", login: { password: true, proxy: false } });
    expect(r.headers.get("www-authenticate")).toBeNull();
    expect((await call(web, "/api/studies")).status).toBe(401);
  });

  it("signs in with a password and sets a HttpOnly SameSite=Strict session cookie", async () => {
    expect(
      (await call(web, "/api/session", { method: "POST", body: { user: "alice", password: "nope" } })).status,
    ).toBe(401);
    expect(
      (await call(web, "/api/session", { method: "POST", body: { user: "mallory", password: "x" } })).status,
    ).toBe(401);
    const r = await call(web, "/api/session", {
      method: "POST",
      body: { user: "alice", password: PW.alice },
    });
    expect(r.status).toBe(200);
    const setCookie = r.headers.get("set-cookie")!;
    expect(setCookie).toMatch(/^fiona_session=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=1800$/);
    expect(r.body).toMatchObject({
      user: "alice",
      admin: false,
      projects: ["PROJ"],
      via: "password",
      showPatientIdentity: false,
    });
    const cookie = setCookie.split(";")[0]!;
    const me = await call(web, "/api/session", { cookie });
    expect(me.body).toMatchObject({ user: "alice", csrfToken: (r.body as { csrfToken: string }).csrfToken });
    expect(JSON.stringify(lines)).not.toContain(PW.alice);
  });

  it("refuses a login posted as a form (login CSRF)", async () => {
    const r = await call(web, "/api/session", {
      method: "POST",
      body: `user=alice&password=${PW.alice}`,
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
    expect(r.status).toBe(403);
  });

  it("ends sessions: sign-out, timeout, password change", async () => {
    const { cookie, csrf } = await login(web, "alice");
    expect((await call(web, "/api/session", { method: "DELETE", cookie })).status).toBe(403);
    const out = await call(web, "/api/session", { method: "DELETE", cookie, csrf });
    expect(out.status).toBe(204);
    expect(out.headers.get("set-cookie")).toContain("Max-Age=0");
    expect((await call(web, "/api/projects", { cookie })).status).toBe(401);

    // The server derives its key from the site secret: forge cookies as a clock in the past would have.
    const past = (ms: number) =>
      new SessionManager({ key: sessionKey(SECRET), idleMinutes: 30, now: () => Date.now() - ms });
    const m = past(31 * 60_000);
    const fp = m.fingerprint(HASH.alice);
    const stale = `fiona_session=${m.encode(m.create("alice", "password", fp))}`;
    expect((await call(web, "/api/projects", { cookie: stale })).status).toBe(401);
    const recent = past(60_000);
    const fresh = `fiona_session=${recent.encode(recent.create("alice", "password", fp))}`;
    expect((await call(web, "/api/projects", { cookie: fresh })).status).toBe(200);
    const oldPassword = `fiona_session=${recent.encode(recent.create("alice", "password", "some-old-hash-fp"))}`;
    expect((await call(web, "/api/projects", { cookie: oldPassword })).status).toBe(401);
  });
});

describe("grants and data shown", () => {
  it("lists only granted projects", async () => {
    const names = async (user: keyof typeof PW) =>
      ((await call(web, "/api/projects", { headers: asBasic(user) })).body as Array<{ name: string }>).map(
        (p) => p.name,
      );
    expect(await names("alice")).toEqual(["PROJ"]);
    expect(await names("bob")).toEqual(["OTHER"]);
    expect(await names("root")).toEqual(["PROJ", "OTHER"]);
    const proj = (await call(web, "/api/projects", { headers: asBasic("alice") })).body as unknown[];
    expect(proj[0]).toEqual({
      name: "PROJ",
      participantPattern: "PROJ_[0-9]{4}",
      events: ["baseline", "followup"],
      destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: 11199 },
    });
  });

  it("shows the incoming list without patient identity or accession number, searchable and filterable", async () => {
    const list = async (qs = "", user: keyof typeof PW = "alice") =>
      (await call(web, `/api/studies${qs}`, { headers: asBasic(user) })).body as Array<
        Record<string, unknown>
      >;
    const all = await list();
    expect(all.map((s) => s.studyInstanceUid).sort()).toEqual([STUDY_A, STUDY_B]);
    expect(all.find((s) => s.studyInstanceUid === STUDY_A)).toMatchObject({
      studyDescription: "CT Abdomen",
      callingAe: "CT_SCANNER",
      seriesCount: 1,
      fileCount: 2,
      transfers: [],
    });
    const text = JSON.stringify(all);
    expect(text).not.toContain("DOE");
    expect(text).not.toContain("PID-");
    expect(text).not.toContain("patientName");
    expect(text).not.toContain("ACC-");

    // An accession number the list does not show still finds its study, exactly.
    expect((await list("?q=ACC-A")).map((s) => s.studyInstanceUid)).toEqual([STUDY_A]);
    expect(await list("?q=acc-a")).toEqual([]);
    expect(await list("?accession=ACC")).toEqual([]);
    expect((await list("?q=head")).map((s) => s.studyInstanceUid)).toEqual([STUDY_B]);
    expect((await list("?from=2024-01-03")).map((s) => s.studyInstanceUid)).toEqual([STUDY_B]);
    expect((await list("?to=20240102")).map((s) => s.studyInstanceUid)).toEqual([STUDY_A]);
    expect((await list("?ae=CT_SCANNER")).map((s) => s.studyInstanceUid)).toEqual([STUDY_A]);
    expect((await list("?accession=ACC-B")).map((s) => s.studyInstanceUid)).toEqual([STUDY_B]);
    expect((await call(web, "/api/studies?from=yesterday", { headers: asBasic("alice") })).status).toBe(400);
    // Transfers of projects the user is not granted are invisible, also as a filter.
    expect((await list("?assigned=assigned")).length).toBe(0);
    expect((await list("?q=O-1")).length).toBe(0);
    expect((await list("?assigned=assigned", "bob")).map((s) => s.studyInstanceUid)).toEqual([STUDY_B]);
    const detail = (await call(web, `/api/studies/${STUDY_B}`, { headers: asBasic("bob") })).body as Record<
      string,
      unknown
    >;
    expect(detail.transfers).toMatchObject([{ project: "OTHER", participant: "O-1", status: "done" }]);
    expect(detail.series).toMatchObject([{ seriesNumber: "1", numFiles: 2 }]);
    const hidden = (await call(web, `/api/studies/${STUDY_B}`, { headers: asBasic("alice") })).body as Record<
      string,
      unknown
    >;
    expect(hidden.transfers).toEqual([]);
    expect((await call(web, "/api/studies/1.2.3.4.5", { headers: asBasic("alice") })).status).toBe(404);
    expect((await call(web, `/api/studies/${STUDY_B}:transfers`, { headers: asBasic("alice") })).status).toBe(
      404,
    );
  });

  it("shows patient name, ID and accession number, from the series JSON, only when the site enables it", async () => {
    const open = await start({ web: { showPatientIdentity: true } });
    const all = (await call(open, "/api/studies", { headers: asBasic("alice") })).body as Array<
      Record<string, unknown>
    >;
    expect(all.find((s) => s.studyInstanceUid === STUDY_A)).toMatchObject({
      accessionNumber: "ACC-A",
      patientName: "DOE, JANE",
      patientId: "PID-ACC-A",
    });
    expect((await call(open, "/api/studies?q=pid-acc-b", { headers: asBasic("alice") })).body).toHaveLength(
      1,
    );
    expect(JSON.stringify(lines)).not.toContain("PID-ACC");
  });

  it("lists and checks participants of granted projects only", async () => {
    expect((await call(web, "/api/projects/OTHER/participants", { headers: asBasic("alice") })).status).toBe(
      404,
    );
    expect((await call(web, "/api/projects/NOPE/participants", { headers: asBasic("root") })).status).toBe(
      404,
    );
    const others = (await call(web, "/api/projects/OTHER/participants", { headers: asBasic("bob") })).body;
    expect(others).toMatchObject([{ participant: "O-1", transfers: 1, events: [] }]);
    const check = async (p: string) =>
      (
        await call(web, `/api/projects/PROJ/participants/check?participant=${encodeURIComponent(p)}`, {
          headers: asBasic("alice"),
        })
      ).body as { valid: boolean; exists: boolean; message?: string };
    expect(await check("P-1")).toMatchObject({ valid: false, exists: false });
    expect((await check("P-1")).message).toContain("PROJ_[0-9]{4}");
    expect(await check("PROJ_0001")).toMatchObject({ valid: true, exists: false });
  });

  it("previews exactly what goes where", async () => {
    const q = (p: string, project = "PROJ", user: keyof typeof PW = "alice") =>
      call(
        web,
        `/api/transfers/preview?study=${STUDY_A}&project=${project}&participant=${p}&event=baseline`,
        {
          headers: asBasic(user),
        },
      );
    const r = await q("PROJ_0001");
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      project: "PROJ",
      participant: "PROJ_0001",
      event: "baseline",
      destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: 11199 },
      seriesCount: 1,
      fileCount: 2,
      newParticipant: true,
      existing: null,
      study: { studyDescription: "CT Abdomen", studyDate: "20240102" },
    });
    expect(r.text).not.toContain("ACC-A");
    expect((await q("bad")).status).toBe(400);
    expect((await q("PROJ_0001", "OTHER")).status).toBe(403);
    // OTHER defines no events, so any event name is accepted; its destination is its own.
    expect((await q("O-2", "OTHER", "bob")).body).toMatchObject({
      destination: { aeTitle: "OTHERPACS", port: 104 },
    });
  });
});

describe("assigning", () => {
  let assigned: string;

  it("refuses session posts without the CSRF token, starts the transfer with it, and audits it", async () => {
    const { cookie, csrf } = await login(web, "alice");
    const body = { studyInstanceUid: STUDY_A, project: "PROJ", participant: "PROJ_0001", event: "baseline" };
    const none = await call(web, "/api/transfers", { method: "POST", cookie, body });
    expect(none.status).toBe(403);
    expect(none.body).toEqual({ error: "missing or invalid CSRF token (X-CSRF-Token)" });
    expect(
      (await call(web, "/api/transfers", { method: "POST", cookie, body, csrf: "x".repeat(43) })).status,
    ).toBe(403);
    const crossSite = await call(web, "/api/transfers", {
      method: "POST",
      cookie,
      csrf,
      body,
      headers: { "Sec-Fetch-Site": "cross-site" },
    });
    expect(crossSite.status).toBe(403);

    const ok = await call(web, "/api/transfers", { method: "POST", cookie, csrf, body });
    expect(ok.status).toBe(202);
    expect(ok.body).toMatchObject({ run: 1, series: 1 });
    assigned = (ok.body as { requestId: string }).requestId;
    expect(assigned).toBe(requestId(body));
    const q = createQueue(QUEUES.transfer, redis, prefix);
    expect(await q.getJob(`${assigned}-1`)).toBeDefined();
    await q.close();

    // The run has not finished (no workers here): a second request is refused instead of racing it.
    expect((await call(web, "/api/transfers", { method: "POST", cookie, csrf, body })).status).toBe(409);
    expect(
      (await call(web, `/api/transfers/${assigned}/retry`, { method: "POST", cookie, csrf })).status,
    ).toBe(409);

    const audit = (await call(web, "/api/audit", { headers: asBasic("root") })).body as Array<
      Record<string, unknown>
    >;
    expect(audit[0]).toMatchObject({
      user: "alice",
      action: "assign",
      via: "password",
      study: STUDY_A,
      project: "PROJ",
      participant: "PROJ_0001",
      event: "baseline",
      requestId: assigned,
      run: 1,
    });
    expect(audit.some((a) => a.action === "login" && a.user === "alice")).toBe(true);
    expect(audit.some((a) => a.action === "login-failed" && a.user === "alice")).toBe(true);
    expect(audit.some((a) => a.action === "login-failed" && a.user === "(unknown user)")).toBe(true);
    expect(JSON.stringify(audit)).not.toContain("mallory");
    expect(
      lines.some(
        (l) =>
          l.includes('"event":"audit"') &&
          l.includes('"action":"assign"') &&
          l.includes('"event":"baseline"'),
      ),
    ).toBe(true);
  });

  it("shows the transfer with live status to granted users only", async () => {
    const mine = (await call(web, "/api/transfers", { headers: asBasic("alice") })).body as Array<
      Record<string, unknown>
    >;
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({
      requestId: assigned,
      project: "PROJ",
      participant: "PROJ_0001",
      requestedBy: "alice",
      destination: "RESEARCH@127.0.0.1:11199",
      study: { studyDescription: "CT Abdomen" },
      live: { state: "queued", label: "queued", retryable: false },
    });
    expect(JSON.stringify(mine)).not.toContain("ACC-A");
    const bobs = (await call(web, "/api/transfers", { headers: asBasic("bob") })).body as Array<
      Record<string, unknown>
    >;
    expect(bobs.map((t) => t.project)).toEqual(["OTHER"]);
    expect(bobs[0]).toMatchObject({ live: { state: "done", retryable: true } });
    expect((await call(web, `/api/transfers/${assigned}`, { headers: asBasic("bob") })).status).toBe(404);
    expect((await call(web, `/api/transfers/${assigned}`, { headers: asBasic("alice") })).status).toBe(200);
    expect(
      (
        await call(web, `/api/transfers/${assigned}/retry`, {
          method: "POST",
          headers: { ...asBasic("bob"), "Content-Type": "application/json" },
        })
      ).status,
    ).toBe(404);
    const bobAudit = (await call(web, "/api/audit", { headers: asBasic("bob") })).body as Array<
      Record<string, unknown>
    >;
    expect(bobAudit.filter((a) => a.project === "PROJ")).toEqual([]);
    expect(bobAudit.filter((a) => a.action === "login")).toEqual([]);
  });

  it("lets scripts assign with basic auth and JSON, and refuses other content types and ungranted projects", async () => {
    const body = JSON.stringify({ studyInstanceUid: STUDY_A, project: "OTHER", participant: "O-7" });
    const plain = await call(web, "/api/transfers", {
      method: "POST",
      body,
      headers: { ...asBasic("bob"), "Content-Type": "text/plain" },
    });
    expect(plain.status).toBe(403);
    const denied = await call(web, "/api/transfers", {
      method: "POST",
      body: { studyInstanceUid: STUDY_A, project: "PROJ", participant: "PROJ_0002" },
      headers: asBasic("bob"),
    });
    expect(denied.status).toBe(403);
    const ok = await call(web, "/api/transfers", { method: "POST", body, headers: asBasic("bob") });
    expect(ok.status).toBe(202);
    const bad = await call(web, "/api/transfers", {
      method: "POST",
      body: { project: "OTHER" },
      headers: asBasic("bob"),
    });
    expect(bad.status).toBe(400);
    expect(
      (await call(web, "/api/transfers", { method: "POST", body: "{", headers: asBasic("bob") })).status,
    ).toBe(400);
    const wrong = await call(web, "/api/projects", { headers: { Authorization: basic("bob", "wrong") } });
    expect(wrong.status).toBe(401);
  });
});

describe("coupling list upload", () => {
  const header = "AccessionNumber,ProjectName,subjectid,eventname";

  it("previews what a list matches without storing it, and stores it on upload", async () => {
    const csv = `${header}\nACC-B,PROJ,PROJ_0042,followup\nACC-NOT-HERE,PROJ,PROJ_0043,baseline\n`;
    const { cookie, csrf } = await login(web, "alice");
    const preview = await call(web, "/api/coupling?dryRun=true", {
      method: "POST",
      cookie,
      csrf,
      body: csv,
      headers: { "Content-Type": "text/csv" },
    });
    expect(preview.status).toBe(200);
    expect(preview.body).toMatchObject({
      dryRun: true,
      stored: 0,
      rows: [
        { line: 2, accessionNumber: "ACC-B", project: "PROJ", participant: "PROJ_0042", event: "followup" },
        { line: 3, accessionNumber: "ACC-NOT-HERE" },
      ],
      matches: [
        {
          studyInstanceUid: STUDY_B,
          project: "PROJ",
          participant: "PROJ_0042",
          status: "planned",
          studyDescription: "MR Head",
        },
      ],
    });
    const withoutToken = await call(web, "/api/coupling", {
      method: "POST",
      cookie,
      body: csv,
      headers: { "Content-Type": "text/csv" },
    });
    expect(withoutToken.status).toBe(403);
    const upload = await call(web, "/api/coupling", {
      method: "POST",
      cookie,
      csrf,
      body: csv,
      headers: { "Content-Type": "text/csv" },
    });
    expect(upload.status).toBe(200);
    expect(upload.body).toMatchObject({
      dryRun: false,
      stored: 2,
      matches: [{ status: "started", studyInstanceUid: STUDY_B }],
    });
    const audit = (await call(web, "/api/audit", { headers: asBasic("root") })).body as Array<
      Record<string, unknown>
    >;
    expect(audit.slice(0, 2)).toMatchObject([
      {
        action: "assign",
        user: "alice",
        study: STUDY_B,
        project: "PROJ",
        participant: "PROJ_0042",
        detail: "coupling list",
      },
      { action: "coupling-upload", user: "alice" },
    ]);
  });

  it("refuses lists naming projects the user is not granted, and reports problems by line", async () => {
    const denied = await call(web, "/api/coupling?dryRun=true", {
      method: "POST",
      body: `${header}\nACC-A,OTHER,O-9,\n`,
      headers: { ...asBasic("alice"), "Content-Type": "text/csv" },
    });
    expect(denied.status).toBe(403);
    const broken = await call(web, "/api/coupling?dryRun=true", {
      method: "POST",
      body: `${header}\nACC-A,PROJ,not-a-match,baseline\n`,
      headers: { ...asBasic("alice"), "Content-Type": "text/csv" },
    });
    expect(broken.status).toBe(400);
    expect((broken.body as { errors: Array<{ line: number }> }).errors[0]!.line).toBe(2);
  });
});

describe("other sign-in modes", () => {
  it("has no anonymous administrator on a site without accounts: every caller must sign in", async () => {
    const h = await startWeb({
      config: testConfig(prefix, {
        dataDir: mkdtempSync(path.join(tmpdir(), "fiona-no-users-")),
        secret: SECRET,
        projects: [{ name: "PROJ" }],
      }),
      connection: redis,
      logger,
      port: 0,
      host: "127.0.0.1",
    });
    servers.push(h);
    const s = await call(h, "/api/session");
    expect(s.status).toBe(401);
    expect(s.headers.get("set-cookie")).toBeNull();
    const body = { studyInstanceUid: STUDY_A, project: "PROJ", participant: "anon-1" };
    expect((await call(h, "/api/transfers", { method: "POST", body })).status).toBe(401);
    expect((await call(h, "/api/projects")).status).toBe(401);
  });

  it("takes the user from a trusted proxy header and requires a session for writes", async () => {
    const h = await start({
      web: { trustedProxyHeader: "X-Remote-User", users: [{ name: "carol", projects: ["PROJ"] }] },
    });
    const as = { "X-Remote-User": "carol" };
    expect((await call(h, "/api/projects", { headers: { "X-Remote-User": "eve" } })).status).toBe(403);
    expect((await call(h, "/api/projects", { headers: as })).body).toMatchObject([{ name: "PROJ" }]);
    const body = { studyInstanceUid: STUDY_A, project: "PROJ", participant: "PROJ_0100" };
    expect((await call(h, "/api/transfers", { method: "POST", body, headers: as })).status).toBe(403);
    const s = await call(h, "/api/session", { headers: as });
    expect(s.body).toMatchObject({ user: "carol", via: "proxy" });
    const cookie = s.headers.get("set-cookie")!.split(";")[0]!;
    const csrf = (s.body as { csrfToken: string }).csrfToken;
    expect((await call(h, "/api/transfers", { method: "POST", body, headers: as, cookie })).status).toBe(403);
    expect(
      (await call(h, "/api/transfers", { method: "POST", body, headers: as, cookie, csrf })).status,
    ).toBe(202);
    // The session belongs to carol: another proxy user cannot use its token.
    const dave = await start({
      web: {
        trustedProxyHeader: "X-Remote-User",
        users: [
          { name: "dave", projects: ["PROJ"] },
          { name: "carol", projects: ["PROJ"] },
        ],
      },
    });
    expect(
      (
        await call(dave, "/api/transfers", {
          method: "POST",
          body,
          headers: { "X-Remote-User": "dave" },
          cookie,
          csrf,
        })
      ).status,
    ).toBe(403);
  });
});
