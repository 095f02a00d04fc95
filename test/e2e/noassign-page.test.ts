/**
 * The Assign page's Exports tab and NoAssign box in headless Chromium (same setup as
 * assign-page.test.ts, smaller): a study sent with storescu to the receiver is exported from its panel
 * (the export is built by the workers and listed with size and download link), downloaded as a
 * pseudonymized NoAssign ZIP and forwarded to a NoAssign destination (storescp), which receives
 * pseudonymized files only.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { startReceiver, type ReceiverHandle } from "../../src/receiver/index.js";
import { WORKER_QUEUES } from "../../src/processors/index.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { hashPassword } from "../../src/web/password.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import { startStorescp, type Storescp } from "../support/peers.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) throw new Error(`${CHROMIUM} is missing (apt-get install chromium)`);

const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
const tmp = (tag: string) => mkdtempSync(path.join(tmpdir(), `fiona-e2e-na-${tag}-`));
const PASSWORD = "alice-noassign-pw";

let cfg: FionaConfig;
let workers: WorkersHandle;
let receiver: ReceiverHandle;
let web: WebHandle;
let browser: Browser;
let clinic: Storescp;
let study: GeneratedStudy;
const pageProblems: string[] = [];

function storescu(port: number, files: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      "storescu",
      ["-aet", "MR_NA_1", "-aec", "FIONA", "127.0.0.1", String(port), ...files],
      (err, _o, e) => (err ? reject(new Error(`storescu failed: ${e}`)) : resolve()),
    );
  });
}

async function openStudyAsAlice(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  page.on("pageerror", (e) => pageProblems.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Uncaught/i.test(m.text()))
      pageProblems.push(m.text());
  });
  await page.goto(`${web.url}/`);
  await page.locator("#login-user").fill("alice");
  await page.locator("#login-password").fill(PASSWORD);
  await page.locator("#login-submit").click();
  await page.locator("#who-name").getByText("alice").waitFor();
  await page.locator(`#studies-body tr[data-uid="${study.studyInstanceUid}"]`).click();
  await page.locator("#drawer").waitFor();
  await page.locator("#a-project").selectOption("PROJ");
  await page.locator("#a-participant").fill("PROJ_0099");
  await expect.poll(() => page.locator("#a-participant-hint").innerText()).toContain("New participant");
  await page.locator("#a-event").selectOption("baseline");
  await expect.poll(() => page.locator("#x-export").isEnabled()).toBe(true);
  return page;
}

describe.skipIf(!haveChromium)("Exports and NoAssign on the Assign page", () => {
  beforeAll(async () => {
    clinic = await startStorescp(tmp("clinic"));
    cfg = testConfig({
      secret: "e2e-noassign-secret-0123456789",
      dicomHost: "127.0.0.1",
      arrival: { quietSeconds: 1 },
      projects: [{ name: "PROJ", participantPattern: "PROJ_[0-9]{4}", events: ["baseline"] }],
      noAssign: {
        destinations: [{ name: "clinic", aeTitle: "RESEARCH", host: "127.0.0.1", port: clinic.port }],
      },
      web: {
        users: [{ name: "alice", passwordHash: hashPassword(PASSWORD, { N: 2 ** 10 }), projects: ["PROJ"] }],
      },
    });
    workers = await startWorkers(cfg, log, WORKER_QUEUES);
    receiver = await startReceiver(cfg, { port: 0, host: "127.0.0.1", log });
    web = await startWeb({ config: cfg, port: 0, host: "127.0.0.1", logger: log });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
      headless: true,
    });
    study = generateStudy({
      outDir: tmp("gen"),
      seed: "e2e-noassign",
      series: 1,
      instancesPerSeries: 3,
      fileSize: 4096,
    });
    await storescu(receiver.port, study.files);
    const auth = `Basic ${Buffer.from(`alice:${PASSWORD}`).toString("base64")}`;
    await waitFor(
      async () => {
        const r = await fetch(`${web.url}/api/studies`, { headers: { Authorization: auth } });
        const list = (await r.json()) as Array<{ studyInstanceUid: string; status: string }>;
        return list.some((x) => x.studyInstanceUid === study.studyInstanceUid && x.status === "arrived");
      },
      "the study to arrive",
      30_000,
      200,
    );
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await web?.close();
    await receiver?.close();
    await workers?.close();
    await clinic?.stop();
    if (cfg) await cleanup(cfg);
  });

  it("requests an export and shows it with size and a download link", async () => {
    const page = await openStudyAsAlice();
    try {
      await page.locator("#x-layout").selectOption("DEFAULT");
      await page.locator("#x-export").click();
      await page.locator("#view-exports").waitFor();
      const row = page.locator("#exports-body tr").filter({ hasText: "PROJ_0099" });
      await row.waitFor();
      await expect
        .poll(() => row.locator(".badge").getAttribute("data-state"), { timeout: 60_000, interval: 500 })
        .toBe("done");
      const link = row.locator("a", { hasText: "Download" });
      const href = await link.getAttribute("href");
      expect(href).toMatch(/^\/api\/exports\/[0-9a-f]{24}\/download$/);
      expect(await row.locator("td.num").innerText()).toMatch(/\d+(\.\d)? (B|KB|MB)/);
      const res = await page.request.get(`${web.url}${href}`);
      expect(res.status()).toBe(200);
      expect(res.headers()["content-type"]).toBe("application/zip");
      expect(pageProblems.splice(0)).toEqual([]);
    } finally {
      await page.context().close();
    }
  }, 90_000);

  it("downloads the NoAssign ZIP and forwards the pseudonymized study to a DICOM destination", async () => {
    const page = await openStudyAsAlice();
    try {
      const [download] = await Promise.all([
        page.waitForEvent("download"),
        page.locator("#n-download").click(),
      ]);
      expect(download.suggestedFilename()).toMatch(/^PROJ_PROJ_0099_baseline_DEFAULT_.*\.zip$/);
      await expect.poll(() => page.locator("#x-result").innerText()).toContain("downloaded");

      expect(await page.locator("#n-dest option").allInnerTexts()).toEqual(["clinic (RESEARCH)"]);
      await page.locator("#n-forward").click();
      await expect
        .poll(() => page.locator("#x-result").innerText(), { timeout: 30_000 })
        .toContain("Sent 3 of 3 images to clinic");
      const files = readdirSync(clinic.dir);
      expect(files).toHaveLength(3);
      for (const f of files) {
        const bytes = readFileSync(path.join(clinic.dir, f));
        for (const m of [
          study.phi.patientName,
          study.phi.patientId,
          study.phi.accessionNumber,
          study.studyInstanceUid,
        ])
          expect(bytes.includes(Buffer.from(m))).toBe(false);
        expect(bytes.includes(Buffer.from("PROJ_0099"))).toBe(true);
      }
      expect(pageProblems.splice(0)).toEqual([]);
    } finally {
      await page.context().close();
    }
  }, 90_000);
});
