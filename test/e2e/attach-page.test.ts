/** The Attach page in headless Chromium: sign in, upload a slide in chunks, progress reaches 100 %. */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Redis } from "ioredis";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedis } from "../../src/queues/connection.js";
import { createQueue, QUEUES } from "../../src/queues/index.js";
import { hashPassword } from "../../src/web/password.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { deletePrefix, REDIS_URL, testConfig, uniquePrefix } from "../web/helpers.js";
import { vipsPyramid } from "../wsi/support/fixtures.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) throw new Error(`${CHROMIUM} is missing (apt-get install chromium)`);

const PW = "alice-pw-1";
const prefix = uniquePrefix();
const dataDir = mkdtempSync(path.join(tmpdir(), "fiona-e2e-attach-"));
const cfg = testConfig(prefix, {
  dataDir,
  secret: "attach-page-secret-0123456789",
  projects: [{ name: "PROJ", participantPattern: "PROJ_[0-9]{4}", events: ["baseline"] }],
  web: { users: [{ name: "alice", passwordHash: hashPassword(PW, { N: 2 ** 10 }), projects: ["PROJ"] }] },
});
let redis: Redis;
let web: WebHandle;
let browser: Browser;

beforeAll(async () => {
  redis = createRedis({ url: REDIS_URL }, "producer");
  web = await startWeb({ config: cfg, connection: redis, port: 0, host: "127.0.0.1" });
  if (haveChromium) {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
    });
  }
});

afterAll(async () => {
  await browser?.close();
  await web?.close();
  await deletePrefix(redis, prefix);
  redis.disconnect();
  rmSync(dataDir, { recursive: true, force: true });
});

describe.runIf(haveChromium)("Attach page", () => {
  it("uploads a slide with progress reaching 100 % and queues its conversion", async () => {
    const slide = vipsPyramid(dataDir, { width: 800, height: 600 });
    const page = await browser.newPage();
    const problems: string[] = [];
    // The signed-out session probe's 401 is expected; anything else (CSP refusals, errors) is not.
    page.on("console", (m) => m.type() === "error" && !m.text().includes("401") && problems.push(m.text()));
    page.on("pageerror", (e) => problems.push(e.message));
    await page.goto(`${web.url}/attach/`);
    await page.fill("#login-user", "alice");
    await page.fill("#login-password", PW);
    await page.click("#login button[type=submit]");
    await page.waitForSelector("#attach:not([hidden])");
    await page.selectOption("#project", "PROJ");
    await page.selectOption("#event", "baseline");
    await page.fill("#participant", "PROJ_0002");
    await page.fill("[data-meta=stain]", "H&E");
    await page.setInputFiles("#file", slide);
    await page.click("#start");
    await page.locator("#status", { hasText: "complete" }).waitFor();
    expect(await page.textContent("#percent")).toBe("100 %");
    expect(await page.getAttribute("#progress", "value")).toBe("100");
    const id = /Upload ([0-9a-f]{32})/.exec((await page.textContent("#status"))!)![1]!;
    const queue = createQueue(QUEUES.wsi, redis, prefix);
    expect((await queue.getJob(id))?.data).toEqual({ uploadId: id });
    await queue.close();
    expect(problems).toEqual([]);
    await page.close();
  });
});
