/**
 * End to end through the Assign page in headless Chromium (Debian's chromium driven by playwright-core):
 * studies sent with storescu to the real receiver appear in the list, one is assigned through the page,
 * its status reaches done and Orthanc (the research PACS) holds the pseudonymized files. A failing
 * transfer shows its reason and is retried with the page's button. A user without the project's grant
 * sees neither the project nor its transfers (page and API), and posts without a CSRF token are refused.
 *
 * FIONA_SCREENSHOTS=<dir> also saves screenshots of the page there (docs/assign-page.png is made so).
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { startReceiver, type ReceiverHandle } from "../../src/receiver/index.js";
import { WORKER_QUEUES } from "../../src/processors/index.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { hashPassword } from "../../src/web/password.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { cleanup, freePort, testConfig, waitFor } from "../support/env.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import { startOrthanc, startStorescp, type Orthanc, type Storescp } from "../support/peers.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
const SCREENSHOTS = process.env.FIONA_SCREENSHOTS;
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) throw new Error(`${CHROMIUM} is missing (apt-get install chromium)`);

const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
const tmp = (tag: string) => mkdtempSync(path.join(tmpdir(), `fiona-e2e-${tag}-`));
const PASSWORDS = { alice: "alice-correct-horse", bob: "bob-battery-staple", root: "root-admin-pw" };
const basic = (user: keyof typeof PASSWORDS) =>
  `Basic ${Buffer.from(`${user}:${PASSWORDS[user]}`).toString("base64")}`;

let cfg: FionaConfig;
let orthanc: Orthanc;
let workers: WorkersHandle;
let receiver: ReceiverHandle;
let web: WebHandle;
let browser: Browser;
let downPort: number;
let latePacs: Storescp | undefined;
const studies: Record<string, GeneratedStudy> = {};
const pageProblems: string[] = [];

interface StudySpec {
  key: string;
  modality: "MR" | "CT";
  description: string;
  accession: string;
  callingAe: string;
  date: string;
  time: string;
  series: number;
}

const SPECS: StudySpec[] = [
  {
    key: "knee",
    modality: "MR",
    description: "MR Knee left",
    accession: "A24-118655",
    callingAe: "MR_PRISMA_1",
    date: "20240610",
    time: "081512",
    series: 2,
  },
  {
    key: "fmri",
    modality: "MR",
    description: "fMRI resting state",
    accession: "A24-118690",
    callingAe: "MR_SKYRA_3",
    date: "20240610",
    time: "143000",
    series: 2,
  },
  {
    key: "chest",
    modality: "CT",
    description: "CT Chest low dose",
    accession: "A24-118702",
    callingAe: "CT_FORCE_2",
    date: "20240611",
    time: "091045",
    series: 1,
  },
  {
    key: "brain",
    modality: "MR",
    description: "MR Brain w/o contrast",
    accession: "A24-118734",
    callingAe: "MR_PRISMA_1",
    date: "20240611",
    time: "102433",
    series: 3,
  },
];

function storescu(port: number, callingAe: string, files: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      "storescu",
      ["-aet", callingAe, "-aec", "FIONA", "127.0.0.1", String(port), ...files],
      { env: { ...process.env, TCP_NODELAY: "1" } },
      (err, _stdout, stderr) => (err ? reject(new Error(`storescu failed: ${stderr}`)) : resolve()),
    );
  });
}

async function apiAs(user: keyof typeof PASSWORDS, pathname: string, init: RequestInit = {}) {
  const res = await fetch(`${web.url}${pathname}`, {
    ...init,
    headers: { Authorization: basic(user), "Content-Type": "application/json", ...(init.headers ?? {}) },
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

async function signIn(user: keyof typeof PASSWORDS): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  // Script errors and CSP violations fail the test that caused them.
  page.on("pageerror", (e) => pageProblems.push(`${user}: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Uncaught/i.test(m.text()))
      pageProblems.push(`${user}: ${m.text()}`);
  });
  await page.goto(`${web.url}/`);
  await page.locator("#login-user").fill(user);
  await page.locator("#login-password").fill(PASSWORDS[user]);
  await page.locator("#login-submit").click();
  await page.locator("#who-name").getByText(user).waitFor();
  return { context, page };
}

async function shot(page: Page, name: string) {
  if (!SCREENSHOTS) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, name) });
}

describe.skipIf(!haveChromium)("Assign page in Chromium", () => {
  beforeAll(async () => {
    orthanc = await startOrthanc(tmp("orthanc"));
    downPort = await freePort();
    const hash = (pw: string) => hashPassword(pw, { N: 2 ** 10 });
    cfg = testConfig({
      secret: "e2e-secret-0123456789",
      dicomHost: "127.0.0.1",
      arrival: { quietSeconds: 1 },
      transfer: { attempts: 2, backoffMs: 200, timeoutMs: 3000 },
      projects: [
        {
          name: "PROJ",
          participantPattern: "PROJ_[0-9]{4}",
          events: ["baseline", "followup"],
          destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: orthanc.dicomPort },
        },
        { name: "DOWN", destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: downPort } },
        {
          name: "OTHER",
          destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: orthanc.dicomPort },
        },
      ],
      web: {
        users: [
          { name: "alice", passwordHash: hash(PASSWORDS.alice), projects: ["PROJ", "DOWN"] },
          { name: "bob", passwordHash: hash(PASSWORDS.bob), projects: ["OTHER"] },
          { name: "root", passwordHash: hash(PASSWORDS.root), admin: true },
        ],
      },
    });
    workers = await startWorkers(cfg, log, WORKER_QUEUES);
    receiver = await startReceiver(cfg, { port: 0, host: "127.0.0.1", log });
    web = await startWeb({ config: cfg, port: 0, host: "127.0.0.1", logger: log });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });

    for (const s of SPECS) {
      studies[s.key] = generateStudy({
        outDir: tmp(`gen-${s.key}`),
        seed: `e2e-${s.key}`,
        modality: s.modality,
        series: s.series,
        instancesPerSeries: 3,
        fileSize: 4096,
        studyDescription: s.description,
        studyDate: s.date,
        studyTime: s.time,
        phi: { accessionNumber: s.accession },
      });
      await storescu(receiver.port, s.callingAe, studies[s.key]!.files);
    }
    // Every study arrived (quiet for arrival.quietSeconds) and is listed.
    await waitFor(
      async () => {
        const r = await apiAs("root", "/api/studies");
        const list = r.body as Array<{ studyInstanceUid: string; status: string }>;
        return SPECS.every((s) =>
          list.some((x) => x.studyInstanceUid === studies[s.key]!.studyInstanceUid && x.status === "arrived"),
        );
      },
      "studies to arrive",
      30_000,
      200,
    );
  }, 120_000);

  afterEach(() => {
    expect(pageProblems.splice(0)).toEqual([]);
  });

  afterAll(async () => {
    await browser?.close();
    await web?.close();
    await receiver?.close();
    await workers?.close();
    await latePacs?.stop();
    await orthanc?.stop();
    if (cfg) await cleanup(cfg);
  });

  it("lists the received studies without patient identity, filters them, assigns one and reaches done", async () => {
    const brain = studies.brain!;
    const { context, page } = await signIn("alice");
    try {
      const row = page.locator(`#studies-body tr[data-uid="${brain.studyInstanceUid}"]`);
      await row.waitFor();
      await expect.poll(() => page.locator("#studies-body tr").count()).toBe(SPECS.length);
      const text = await page.locator("body").innerText();
      expect(text).toContain("MR Brain w/o contrast");
      expect(text).toContain("MR_PRISMA_1");
      // The accession number is patient identity too: shown only where the site shows names.
      for (const phi of [brain.phi.patientName, brain.phi.patientId, "PHIMARK", "A24-118734"])
        expect(text).not.toContain(phi);

      // Search by accession number (exactly: the list does not show it), by AE title, by date.
      await page.locator("#f-q").fill("A24-118702");
      await expect.poll(() => page.locator("#studies-body tr").count()).toBe(1);
      await page.locator("#f-q").fill("");
      await page.locator("#f-ae").selectOption("MR_PRISMA_1");
      await expect.poll(() => page.locator("#studies-body tr").count()).toBe(2);
      await page.locator("#f-ae").selectOption("");
      await page.locator("#f-from").fill("2024-06-11");
      await expect.poll(() => page.locator("#studies-body tr").count()).toBe(2);
      await page.locator("#f-clear").click();
      await expect.poll(() => page.locator("#studies-body tr").count()).toBe(SPECS.length);

      // Open the study: only granted projects are offered.
      await row.click();
      await page.locator("#drawer").waitFor();
      expect(await page.locator("#d-title").innerText()).toBe("MR Brain w/o contrast");
      const options = await page.locator("#a-project option").allInnerTexts();
      expect(options).toEqual(["Choose a project…", "PROJ", "DOWN"]);
      await page.locator("#a-project").selectOption("PROJ");

      // The participant is checked live against the project's pattern.
      await page.locator("#a-participant").fill("P-17");
      await expect.poll(() => page.locator("#a-participant-hint").getAttribute("class")).toContain("bad");
      expect(await page.locator("#a-review").isDisabled()).toBe(true);
      await page.locator("#a-participant").fill("PROJ_0001");
      await expect.poll(() => page.locator("#a-participant-hint").innerText()).toContain("New participant");
      await page.locator("#a-event").selectOption("baseline");
      await expect.poll(() => page.locator("#a-review").isEnabled()).toBe(true);
      await shot(page, "assign-page.png");

      // The confirmation says exactly what goes where.
      await page.locator("#a-review").click();
      const dialog = page.locator("#confirm");
      await dialog.waitFor();
      const what = await page.locator("#c-what").innerText();
      expect(what).toContain("2024-06-11");
      expect(what).toContain("MR Brain w/o contrast");
      expect(what).toContain("9 images in 3 series");
      const where = await page.locator("#c-where").innerText();
      expect(where).toContain("PROJ");
      expect(where).toContain("PROJ_0001");
      expect(where).toContain("baseline");
      expect(where).toContain(`RESEARCH@127.0.0.1:${orthanc.dicomPort}`);
      await shot(page, "assign-confirm.png");
      await page.locator("#c-send").click();

      // Live status in the transfer history until done.
      const transfer = page.locator("#transfers-body tr").filter({ hasText: "PROJ_0001" });
      await transfer.waitFor();
      await expect
        .poll(() => transfer.locator(".badge").getAttribute("data-state"), { timeout: 60_000, interval: 500 })
        .toBe("done");
      expect(await transfer.innerText()).toContain("9 images sent");
      await page.locator('.tab[data-view="studies"]').click();
      await expect.poll(() => row.innerText()).toContain("PROJ · PROJ_0001 · baseline");
      await shot(page, "assign-list.png");
    } finally {
      await context.close();
    }

    // The research PACS holds the pseudonymized files.
    const ids = (await (await fetch(`${orthanc.url}/instances`)).json()) as string[];
    expect(ids).toHaveLength(9);
    for (const id of ids.slice(0, 3)) {
      const tags = (await (await fetch(`${orthanc.url}/instances/${id}/simplified-tags`)).json()) as Record<
        string,
        string
      >;
      expect(tags.PatientName).toBe("PROJ_0001");
      expect(tags.PatientID).toBe("PROJ_0001");
      expect(tags.StudyInstanceUID).not.toBe(brain.studyInstanceUid);
      const bytes = Buffer.from(await (await fetch(`${orthanc.url}/instances/${id}/file`)).arrayBuffer());
      for (const phi of [brain.phi.patientName, brain.phi.patientId, "A24-118734"]) {
        expect(bytes.includes(Buffer.from(phi)), `${phi} leaked`).toBe(false);
      }
    }

    // The assignment is in the audit log.
    const audit = (await apiAs("root", "/api/audit")).body as Array<Record<string, unknown>>;
    expect(audit).toContainEqual(
      expect.objectContaining({
        action: "assign",
        user: "alice",
        via: "password",
        study: brain.studyInstanceUid,
        project: "PROJ",
        participant: "PROJ_0001",
        event: "baseline",
      }),
    );
  });

  it("shows a failed transfer with its reason and retries it with the button", async () => {
    const fmri = studies.fmri!;
    const started = await apiAs("alice", "/api/transfers", {
      method: "POST",
      body: JSON.stringify({ studyInstanceUid: fmri.studyInstanceUid, project: "DOWN", participant: "D-01" }),
    });
    expect(started.status).toBe(202);
    const { context, page } = await signIn("alice");
    try {
      await page.locator('.tab[data-view="transfers"]').click();
      const row = page.locator("#transfers-body tr").filter({ hasText: "D-01" });
      await expect
        .poll(() => row.locator(".badge").getAttribute("data-state"), { timeout: 60_000, interval: 500 })
        .toBe("failed");
      expect(await row.locator(".reason").innerText()).toMatch(/\S/);
      await shot(page, "assign-transfers.png");

      latePacs = await startStorescp(tmp("late-pacs"), ["+xa"], { port: downPort });
      await row.getByRole("button", { name: "Retry" }).click();
      await expect
        .poll(() => row.locator(".badge").getAttribute("data-state"), { timeout: 60_000, interval: 500 })
        .toBe("done");
      expect(await row.innerText()).toContain("2 runs");
    } finally {
      await context.close();
    }
    const audit = (await apiAs("root", "/api/audit")).body as Array<Record<string, unknown>>;
    expect(audit).toContainEqual(
      expect.objectContaining({ action: "retry", user: "alice", project: "DOWN", run: 2 }),
    );
  });

  it("previews a coupling list's matches, then uploads it and the matched study is sent", async () => {
    const knee = studies.knee!;
    const { context, page } = await signIn("alice");
    try {
      await page.locator('.tab[data-view="coupling"]').click();
      await page
        .locator("#c-text")
        .fill(
          "AccessionNumber,ProjectName,subjectid,eventname\nA24-118655,PROJ,PROJ_0002,baseline\nA24-999999,PROJ,PROJ_0003,baseline\n",
        );
      expect(await page.locator("#c-apply").isDisabled()).toBe(true);
      await page.locator("#c-preview").click();
      const result = page.locator("#c-result");
      await result.getByText("Preview (nothing stored yet)").waitFor();
      const preview = await result.innerText();
      expect(preview).toContain("MR Knee left");
      expect(preview).toContain("will be sent");
      expect(preview).toContain("1 match");
      await shot(page, "assign-coupling.png");
      await page.locator("#c-apply").click();
      await result.getByText("Uploaded:").waitFor();
      expect(await result.innerText()).toContain("transfer started");

      await page.locator('.tab[data-view="transfers"]').click();
      const row = page.locator("#transfers-body tr").filter({ hasText: "PROJ_0002" });
      await expect
        .poll(() => row.locator(".badge").getAttribute("data-state"), { timeout: 60_000, interval: 500 })
        .toBe("done");
    } finally {
      await context.close();
    }
    const audit = (await apiAs("root", "/api/audit")).body as Array<Record<string, unknown>>;
    expect(audit).toContainEqual(
      expect.objectContaining({
        action: "assign",
        user: "alice",
        study: knee.studyInstanceUid,
        participant: "PROJ_0002",
        detail: "coupling list",
      }),
    );
    expect(audit).toContainEqual(expect.objectContaining({ action: "coupling-upload", user: "alice" }));
  });

  it("hides projects a user is not granted, on the page and in the API", async () => {
    const brain = studies.brain!;
    const { context, page } = await signIn("bob");
    try {
      const row = page.locator(`#studies-body tr[data-uid="${brain.studyInstanceUid}"]`);
      await row.waitFor();
      expect(await row.innerText()).toContain("Not assigned");
      await row.click();
      await page.locator("#drawer").waitFor();
      expect(await page.locator("#a-project option").allInnerTexts()).toEqual(["Choose a project…", "OTHER"]);
      await page.locator("#d-close").click();
      await page.locator('.tab[data-view="transfers"]').click();
      await page.locator("#transfers-empty").waitFor();
      expect(await page.locator("#transfers-body tr").count()).toBe(0);
      const text = await page.locator("body").innerText();
      expect(text).not.toContain("PROJ_0001");
      expect(text).not.toContain("D-01");
    } finally {
      await context.close();
    }

    const projects = (await apiAs("bob", "/api/projects")).body as Array<{ name: string }>;
    expect(projects.map((p) => p.name)).toEqual(["OTHER"]);
    expect((await apiAs("bob", "/api/transfers")).body).toEqual([]);
    const aliceTransfers = (await apiAs("alice", "/api/transfers")).body as Array<{
      requestId: string;
      project: string;
    }>;
    const projTransfer = aliceTransfers.find((t) => t.project === "PROJ")!;
    expect((await apiAs("bob", `/api/transfers/${projTransfer.requestId}`)).status).toBe(404);
    expect(
      (await apiAs("bob", `/api/transfers/${projTransfer.requestId}/retry`, { method: "POST" })).status,
    ).toBe(404);
    expect((await apiAs("bob", "/api/projects/PROJ/participants")).status).toBe(404);
    const assign = await apiAs("bob", "/api/transfers", {
      method: "POST",
      body: JSON.stringify({
        studyInstanceUid: brain.studyInstanceUid,
        project: "PROJ",
        participant: "PROJ_0002",
      }),
    });
    expect(assign.status).toBe(403);
    const audit = (await apiAs("bob", "/api/audit")).body as Array<{ project?: string }>;
    expect(audit.filter((a) => a.project === "PROJ" || a.project === "DOWN")).toEqual([]);
  });

  it("refuses posts without the CSRF token, from the page's own session", async () => {
    const brain = studies.brain!;
    const { context, page } = await signIn("alice");
    try {
      const body = JSON.stringify({
        studyInstanceUid: brain.studyInstanceUid,
        project: "PROJ",
        participant: "PROJ_0003",
      });
      const results = await page.evaluate(async (b) => {
        const post = (headers: Record<string, string>) =>
          fetch("/api/transfers", { method: "POST", headers, body: b }).then(async (r) => ({
            status: r.status,
            body: await r.text(),
          }));
        return {
          none: await post({ "Content-Type": "application/json" }),
          wrong: await post({ "Content-Type": "application/json", "X-CSRF-Token": "forged" }),
          form: await post({ "Content-Type": "application/x-www-form-urlencoded" }),
        };
      }, body);
      expect(results.none.status).toBe(403);
      expect(results.none.body).toContain("CSRF");
      expect(results.wrong.status).toBe(403);
      expect(results.form.status).toBe(403);

      // The session cookie alone, replayed from outside the page: refused too, and cross-site with the token.
      const cookies = await context.cookies();
      const session = cookies.find((c) => c.name === "fiona_session")!;
      expect(session).toMatchObject({ httpOnly: true, sameSite: "Strict" });
      const cookie = `fiona_session=${session.value}`;
      const bare = await fetch(`${web.url}/api/transfers`, {
        method: "POST",
        headers: { Cookie: cookie, "Content-Type": "application/json" },
        body,
      });
      expect(bare.status).toBe(403);
      const me = (await (await fetch(`${web.url}/api/session`, { headers: { Cookie: cookie } })).json()) as {
        csrfToken: string;
      };
      const crossSite = await fetch(`${web.url}/api/transfers`, {
        method: "POST",
        headers: {
          Cookie: cookie,
          "Content-Type": "application/json",
          "X-CSRF-Token": me.csrfToken,
          "Sec-Fetch-Site": "cross-site",
        },
        body,
      });
      expect(crossSite.status).toBe(403);
      const ok = await fetch(
        `${web.url}/api/transfers/preview?study=${brain.studyInstanceUid}&project=PROJ&participant=PROJ_0003`,
        {
          headers: { Cookie: cookie },
        },
      );
      expect(ok.status).toBe(200);
    } finally {
      await context.close();
    }
    const transfers = (await apiAs("root", "/api/transfers")).body as Array<{ participant: string }>;
    expect(transfers.map((t) => t.participant)).not.toContain("PROJ_0003");
  });
});
