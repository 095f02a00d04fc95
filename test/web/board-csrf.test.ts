/**
 * CSRF on Bull Board's state-changing API: with the session cookie a write needs the session's token
 * (X-XSRF-TOKEN, which Bull Board's UI copies from the XSRF-TOKEN cookie, or X-CSRF-Token); scripts
 * with basic auth need a JSON content type; cross-site requests are refused either way.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QUEUES } from "../../src/queues/index.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { captureLogger, deletePrefix, REDIS_URL, testConfig, uniquePrefix } from "./helpers.js";
import { authOf, failJobs, jobState, roleUsers, signIn } from "./roles-kit.js";

const prefix = uniquePrefix();
const { logger } = captureLogger();
let redis: Redis;
let web: WebHandle;

beforeAll(async () => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const cfg = testConfig(prefix, {
    secret: "board-csrf-secret-0123456789",
    projects: [{ name: "PROJ" }],
    web: { users: roleUsers() },
  });
  web = await startWeb({ config: cfg, connection: redis, logger, port: 0, host: "127.0.0.1" });
});

afterAll(async () => {
  await web?.close();
  await deletePrefix(redis, prefix);
  redis.disconnect();
});

const retryUrl = (id: string) => `${web.url}/admin/queues/api/queues/${QUEUES.transfer}/${id}/retry`;

/** The XSRF-TOKEN cookie the dashboard hands a signed-in browser, with its attributes. */
async function boardCookie(cookie: string): Promise<{ token: string; attributes: string[] }> {
  const res = await fetch(`${web.url}/admin/queues`, { headers: { cookie } });
  expect(res.status).toBe(200);
  const set = res.headers.getSetCookie().find((c) => c.startsWith("XSRF-TOKEN="));
  expect(set).toBeDefined();
  const [pair, ...attributes] = set!.split(";").map((s) => s.trim());
  return { token: pair!.slice("XSRF-TOKEN=".length), attributes };
}

describe("Bull Board CSRF", () => {
  it("hands the session's CSRF token to the dashboard in a script-readable, path-bound cookie", async () => {
    const s = await signIn(web.url, "operator");
    const { token, attributes } = await boardCookie(s.cookie);
    expect(token).toBe(s.csrf);
    expect(attributes).toEqual(expect.arrayContaining(["Path=/admin/queues", "SameSite=Strict"]));
    expect(attributes).not.toContain("HttpOnly");
    // Once the browser has it, it is not sent again.
    const again = await fetch(`${web.url}/admin/queues`, {
      headers: { cookie: `${s.cookie}; XSRF-TOKEN=${token}` },
    });
    expect(again.headers.getSetCookie().some((c) => c.startsWith("XSRF-TOKEN="))).toBe(false);
  });

  it("refuses cookie-session writes without the token, with a wrong one, or cross-site", async () => {
    const s = await signIn(web.url, "operator");
    const { token } = await boardCookie(s.cookie);
    const [id] = await failJobs(prefix, QUEUES.transfer, [{ project: "PROJ" }]);
    const put = (headers: Record<string, string>) =>
      fetch(retryUrl(id!), { method: "PUT", headers: { cookie: s.cookie, ...headers } });

    const none = await put({ "Content-Type": "application/json" });
    expect(none.status).toBe(403);
    expect(await none.json()).toEqual({ error: "missing or invalid CSRF token (X-CSRF-Token)" });
    expect((await put({ "X-XSRF-TOKEN": `${token.slice(0, -2)}xx` })).status).toBe(403);
    // Another session's token does not fit this session.
    const other = await signIn(web.url, "operator");
    expect((await put({ "X-XSRF-TOKEN": other.csrf })).status).toBe(403);
    expect((await put({ "X-XSRF-TOKEN": token, "Sec-Fetch-Site": "cross-site" })).status).toBe(403);
    expect((await put({ "X-XSRF-TOKEN": token, Origin: "http://evil.example" })).status).toBe(403);
    expect(await jobState(prefix, QUEUES.transfer, id!)).toBe("failed");

    // As Bull Board's UI sends it: the cookie's token in X-XSRF-TOKEN.
    expect((await put({ "X-XSRF-TOKEN": token, "Sec-Fetch-Site": "same-origin" })).status).toBe(204);
    expect(await jobState(prefix, QUEUES.transfer, id!)).toBe("waiting");
  });

  it("accepts the Assign page's X-CSRF-Token as well", async () => {
    const s = await signIn(web.url, "admin");
    const res = await fetch(`${web.url}/admin/queues/api/queues/${QUEUES.reclassify}/pause`, {
      method: "PUT",
      headers: { cookie: s.cookie, "X-CSRF-Token": s.csrf },
    });
    expect(res.status).toBe(200);
  });

  it("asks scripts with basic auth for a JSON content type, which forms cannot send cross-origin", async () => {
    const [id] = await failJobs(prefix, QUEUES.deidentify, [{ project: "PROJ" }]);
    const put = (headers: Record<string, string>) =>
      fetch(`${web.url}/admin/queues/api/queues/${QUEUES.deidentify}/${id}/retry`, {
        method: "PUT",
        headers: { ...authOf("operator"), ...headers },
      });
    expect((await put({ "Content-Type": "text/plain" })).status).toBe(403);
    expect((await put({ "Content-Type": "application/json", "Sec-Fetch-Site": "cross-site" })).status).toBe(
      403,
    );
    expect((await put({ "Content-Type": "application/json" })).status).toBe(204);
  });

  it("clears the dashboard's token cookie on sign-out", async () => {
    const s = await signIn(web.url, "viewer");
    const out = await fetch(`${web.url}/api/session`, {
      method: "DELETE",
      headers: { cookie: s.cookie, "X-CSRF-Token": s.csrf },
    });
    expect(out.status).toBe(204);
    expect(out.headers.getSetCookie()).toEqual(
      expect.arrayContaining([expect.stringMatching(/^XSRF-TOKEN=; Path=\/admin\/queues; .*Max-Age=0/)]),
    );
    // The revoked session opens no door.
    expect(
      (await fetch(`${web.url}/admin/queues/api/queues`, { headers: { cookie: s.cookie } })).status,
    ).toBe(401);
  });
});
