import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Redis } from "ioredis";
import { createRedis } from "../../src/queues/connection.js";
import { QUEUES, createQueue } from "../../src/queues/index.js";
import { raiseRedcapAlert, readRedcapAlert } from "../../src/redcap/alert.js";
import { clearRedcapAlertCli } from "../../src/redcap/cli.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { captureLogger, deletePrefix, REDIS_URL, testConfig, uniquePrefix } from "./helpers.js";

const prefix = uniquePrefix();
const config = {
  ...testConfig(prefix, { redcap: { url: "https://redcap.example.org/api/" } }),
  httpPort: 0,
};
const { logger } = captureLogger();
let redis: Redis;
let web: WebHandle;

beforeAll(async () => {
  redis = createRedis({ url: REDIS_URL }, "producer");
  await new Promise<void>((resolve, reject) => {
    redis.once("ready", () => resolve());
    redis.once("error", reject);
  });
  web = await startWeb({ config, connection: redis, logger });
});

afterAll(async () => {
  await web?.close();
  await deletePrefix(redis, prefix);
  redis.disconnect();
});

describe("/readyz and the REDCap alert", () => {
  it("reports the REDCap alert as a degraded check while staying ready; fiona redcap clear-alert clears it", async () => {
    let res = await fetch(`${web.url}/readyz`);
    expect(await res.json()).toEqual({
      status: "ready",
      checks: { redis: { ok: true }, queues: { ok: true }, redcap: { ok: true } },
    });

    const queues = [
      createQueue(QUEUES.redcapPush, redis, prefix),
      createQueue(QUEUES.redcapSync, redis, prefix),
    ];
    await raiseRedcapAlert(redis, prefix, queues, logger, {
      redcapProject: "incoming",
      status: 429,
      reason: "429",
    });
    res = await fetch(`${web.url}/readyz`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      status: string;
      checks: Record<string, { ok: boolean; detail?: unknown }>;
    };
    expect(body.status).toBe("ready");
    expect(body.checks.redcap).toMatchObject({ ok: false, detail: { status: "degraded" } });
    expect(await queues[0]!.isPaused()).toBe(true);

    const out = vi.spyOn(console, "log").mockImplementation(() => undefined);
    await clearRedcapAlertCli(config);
    out.mockRestore();
    expect(await readRedcapAlert(redis, prefix)).toBeUndefined();
    expect(await queues[0]!.isPaused()).toBe(false);
    expect(await queues[1]!.isPaused()).toBe(false);
    res = await fetch(`${web.url}/readyz`);
    expect(((await res.json()) as { checks: { redcap: unknown } }).checks.redcap).toEqual({ ok: true });
    await Promise.all(queues.map((q) => q.close()));
  });
});
