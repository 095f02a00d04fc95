import type { Job } from "bullmq";
import net from "node:net";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { heartbeatProcessor } from "../../src/processors/heartbeat.js";
import type { HeartbeatJob } from "../../src/queues/index.js";
import { startReceiver, type ReceiverHandle } from "../../src/receiver/server.js";
import { readHeartbeat, shouldSkipEcho } from "../../src/schedules/heartbeat-state.js";
import { cleanup, testConfig } from "../support/env.js";
import { RawScu } from "../receiver/raw-scu.js";
import { wedgeAssociation } from "./wedge.js";

let cfg: FionaConfig;
let redis: Redis;
let receiver: ReceiverHandle;
const job = { id: "hb", data: { kind: "echo" } } as Job<HeartbeatJob>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  cfg = testConfig({
    receiver: { maxAssociations: 1, maxConnectionsPerPeer: 40 },
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

const processorFor = (rx: ReceiverHandle, onFailing: (n: number) => void = () => {}) =>
  heartbeatProcessor({ cfg, redis, receiver: rx, log: createLogger("silent"), onFailing });

describe("heartbeat processor against a real receiver", () => {
  it("echoes, skips while another association is active, and is not failed by a full receiver", async () => {
    const run = processorFor(receiver);
    expect(await run(job)).toEqual({ outcome: "ok", consecutiveFailures: 0 });
    expect((await readHeartbeat(redis, cfg.redis.prefix))?.lastOk).toBeDefined();

    // One idle association takes the only slot: peers are turned away, but the receiver is alive.
    const wedge = await wedgeAssociation(receiver.port);
    try {
      expect((await run(job)).outcome).toBe("skipped");
      await sleep(400); // idle past activityGraceSeconds: no longer suppresses the check
      expect(await run(job)).toEqual({ outcome: "ok", consecutiveFailures: 0 });
    } finally {
      wedge.destroy();
    }
  });

  it("counts failures of a receiver that stopped listening and asks to exit", async () => {
    const gone = await startReceiver(cfg, { port: 0, host: "127.0.0.1", log: createLogger("silent") });
    await gone.close();
    const failing: number[] = [];
    const run = processorFor(gone, (n) => failing.push(n));
    await expect(run(job)).rejects.toThrow(/not listening/);
    expect(failing).toEqual([]);
    expect((await readHeartbeat(redis, cfg.redis.prefix))?.consecutiveFailures).toBe(1);
    await expect(run(job)).rejects.toThrow(/not listening/);
    expect(failing).toEqual([2]);
    expect(await readHeartbeat(redis, cfg.redis.prefix)).toMatchObject({
      consecutiveFailures: 2,
      failuresTotal: 2,
    });

    const alive = processorFor(receiver);
    expect((await alive(job)).outcome).toBe("ok");
    expect((await readHeartbeat(redis, cfg.redis.prefix))?.consecutiveFailures).toBe(0);
  });

  it("reaches the receiver while its DICOM port is flooded", async () => {
    const run = processorFor(receiver);
    const flood = Array.from({ length: 60 }, () => net.connect({ host: "127.0.0.1", port: receiver.port }));
    try {
      await sleep(400);
      expect(await run(job)).toEqual({ outcome: "ok", consecutiveFailures: 0 });
      expect(receiver.stats().connectionsRefused).toBeGreaterThan(0); // beyond maxConnectionsPerPeer
    } finally {
      for (const s of flood) s.destroy();
    }
  });

  it("offers only C-ECHO on its loopback listener: storage contexts are refused there", async () => {
    const scu = await RawScu.connect(receiver.echoEndpoint.host, receiver.echoEndpoint.port);
    const ac = await scu.associate("FIONA", "FIONA", [
      { id: 1, abstractSyntax: "1.2.840.10008.1.1", transferSyntaxes: ["1.2.840.10008.1.2"] },
      { id: 3, abstractSyntax: "1.2.840.10008.5.1.4.1.1.4", transferSyntaxes: ["1.2.840.10008.1.2"] },
    ]);
    expect(ac.accepted).toBe(true);
    expect([...ac.contexts.keys()]).toEqual([1]);
    await scu.release();
  });
});
