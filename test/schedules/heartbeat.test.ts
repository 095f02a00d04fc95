import type { Job } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { heartbeatProcessor } from "../../src/processors/heartbeat.js";
import type { HeartbeatJob } from "../../src/queues/index.js";
import { startReceiver, type ReceiverHandle } from "../../src/receiver/server.js";
import { readHeartbeat, shouldSkipEcho } from "../../src/schedules/heartbeat-state.js";
import { cleanup, testConfig } from "../support/env.js";
import { wedgeAssociation } from "./wedge.js";

let cfg: FionaConfig;
let redis: Redis;
let receiver: ReceiverHandle;
const job = { id: "hb", data: { kind: "echo" } } as Job<HeartbeatJob>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  cfg = testConfig({
    receiver: { maxAssociations: 1 },
    schedules: {
      heartbeat: { every: 1000, failuresBeforeExit: 2, echoTimeoutMs: 2000, activityGraceSeconds: 0.3 },
    },
  });
  redis = new Redis(cfg.redis.url);
  receiver = await startReceiver(cfg, {
    port: 0,
    host: "127.0.0.1",
    log: createLogger("silent"),
    closeTimeoutMs: 100,
  });
});

afterAll(async () => {
  await receiver.close();
  redis.disconnect();
  await cleanup(cfg);
});

describe("shouldSkipEcho", () => {
  it("skips only for recent activity that came after our own previous echo", () => {
    expect(shouldSkipEcho(10_000, 9_000, 5_000, 16_000)).toBe(true);
    expect(shouldSkipEcho(30_000, 9_000, 5_000, 16_000)).toBe(false); // idle longer than the grace
    expect(shouldSkipEcho(10_000, 9_000, 9_500, 16_000)).toBe(false); // that was our own echo
  });
});

describe("heartbeat processor against a real receiver", () => {
  it("echoes, skips while another association is active, then counts failures of a wedged receiver and asks to exit", async () => {
    const failing: number[] = [];
    const run = heartbeatProcessor({
      cfg,
      redis,
      receiver,
      log: createLogger("silent"),
      onFailing: (n) => failing.push(n),
    });
    expect(await run(job)).toEqual({ outcome: "ok", consecutiveFailures: 0 });
    expect((await readHeartbeat(redis, cfg.redis.prefix))?.lastOk).toBeDefined();

    // One idle association takes the only slot.
    const wedge = await wedgeAssociation(receiver.port);
    try {
      expect((await run(job)).outcome).toBe("skipped");
      await sleep(400); // idle past activityGraceSeconds: no longer suppresses the check
      await expect(run(job)).rejects.toThrow(/C-ECHO/);
      expect(failing).toEqual([]);
      expect((await readHeartbeat(redis, cfg.redis.prefix))?.consecutiveFailures).toBe(1);
      await expect(run(job)).rejects.toThrow(/C-ECHO/);
      expect(failing).toEqual([2]);
      const state = await readHeartbeat(redis, cfg.redis.prefix);
      expect(state).toMatchObject({ consecutiveFailures: 2, failuresTotal: 2, skippedTotal: 1 });
    } finally {
      wedge.destroy();
    }
    await sleep(100);
    expect((await run(job)).outcome).toBe("ok");
    expect((await readHeartbeat(redis, cfg.redis.prefix))?.consecutiveFailures).toBe(0);
  });
});
