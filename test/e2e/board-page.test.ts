/**
 * Bull Board behind the web server's sign-in, in headless Chromium: a browser without a session is
 * sent to the Assign page to sign in and comes back to the dashboard, which renders with the same
 * session cookie; a retry clicked in Bull Board's own UI passes the CSRF check (its HTTP client sends
 * the XSRF-TOKEN cookie back as X-XSRF-TOKEN) and is audited under the signed-in user.
 */
import { existsSync } from "node:fs";
import { Redis } from "ioredis";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QUEUES } from "../../src/queues/index.js";
import { AuditLog } from "../../src/registry/audit.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { deletePrefix, REDIS_URL, testConfig, uniquePrefix } from "../web/helpers.js";
import { failJobs, jobState, roleUsers, USERS } from "../web/roles-kit.js";
import { waitFor } from "../support/env.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) throw new Error(`${CHROMIUM} is missing (apt-get install chromium)`);

const prefix = uniquePrefix();
let redis: Redis;
let web: WebHandle;
let browser: Browser;

beforeAll(async () => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const cfg = testConfig(prefix, {
    secret: "board-page-secret-0123456789",
    projects: [{ name: "PROJ" }],
    web: { users: roleUsers() },
  });
  web = await startWeb({ config: cfg, connection: redis, port: 0, host: "127.0.0.1" });
  if (haveChromium) {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
      ],
    });
  }
});

afterAll(async () => {
  await browser?.close();
  await web?.close();
  await deletePrefix(redis, prefix);
  redis.disconnect();
});

/** Clicks the job card's retry button (an icon; Bull Board labels it in a tooltip only) and confirms. */
async function retry(page: Page): Promise<void> {
  await page
    .locator("button:has(svg.lucide-refresh-cw)")
    .filter({ hasNotText: /retry all/i })
    .click();
  await page.getByRole("alertdialog").getByRole("button", { name: "Confirm" }).click();
}

describe.runIf(haveChromium)("Bull Board in Chromium", () => {
  it("signs in on the Assign page, renders the dashboard, and audits a retry clicked there", async () => {
    const [id] = await failJobs(prefix, QUEUES.transfer, [
      { requestId: "req-1", run: 1, studyInstanceUid: "1.2.3", project: "PROJ", participant: "PROJ_0001" },
    ]);
    const context = await browser.newContext();
    const page = await context.newPage();
    const dashboard = `${web.url}/admin/queues/queue/${QUEUES.transfer}?status=failed`;

    await page.goto(dashboard);
    expect(new URL(page.url()).pathname).toBe("/assign/");
    await page.locator("#login-user").fill(USERS.operator.name);
    await page.locator("#login-password").fill(USERS.operator.password);
    await page.locator("#login-submit").click();

    await page.waitForURL(dashboard);
    await page.getByText(`#${id}`).first().waitFor();
    expect(await page.title()).toBe("FIONA");

    await retry(page);
    await waitFor(
      async () => (await jobState(prefix, QUEUES.transfer, id!)) === "waiting",
      "the retried job",
    );
    const audit = new AuditLog(redis, prefix);
    const entry = await waitFor(
      async () => (await audit.list({ limit: 20 })).find((e) => e.action === "queues:retry"),
      "the audit entry",
    );
    expect(entry).toMatchObject({
      user: USERS.operator.name,
      via: "password",
      queue: QUEUES.transfer,
      jobId: id,
      project: "PROJ",
      status: 204,
    });
    await context.close();
  });

  it("shows a viewer the dashboard but refuses the viewer's retry", async () => {
    const [id] = await failJobs(prefix, QUEUES.send, [{ requestId: "req-2", run: 1, project: "PROJ" }]);
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${web.url}/assign/`);
    await page.locator("#login-user").fill(USERS.viewer.name);
    await page.locator("#login-password").fill(USERS.viewer.password);
    await page.locator("#login-submit").click();
    await page.locator("#who-role").getByText("viewer").waitFor();
    // Viewers are not offered what they may not do; the link to the dashboard is there.
    expect(await page.locator("#assign-form").isVisible()).toBe(false);
    await page.locator("#queues-link").click();
    await page.waitForURL(`${web.url}/admin/queues`);
    await page.goto(`${web.url}/admin/queues/queue/${QUEUES.send}?status=failed`);
    await page.getByText(`#${id}`).first().waitFor();
    const refused = page.waitForResponse((r) => r.url().endsWith(`/${id}/retry`));
    await retry(page);
    expect((await refused).status()).toBe(403);
    expect(await jobState(prefix, QUEUES.send, id!)).toBe("failed");
    await context.close();
  });
});
