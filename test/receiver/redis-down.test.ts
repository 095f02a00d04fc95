import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import {
  archivedFiles,
  startTestReceiver,
  storescu,
  tempDir,
  waitFor,
  type TestReceiver,
} from "./helpers.js";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function startPrivateRedis(port?: number): Promise<{ url: string; port: number; proc: ChildProcess }> {
  port ??= await freePort();
  const proc = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    {
      stdio: "ignore",
    },
  );
  const url = `redis://127.0.0.1:${port}`;
  const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: 0 });
  probe.on("error", () => {});
  await waitFor(async () => {
    try {
      if (probe.status !== "ready") await probe.connect().catch(() => {});
      return (await probe.ping()) === "PONG";
    } catch {
      return false;
    }
  }, 10_000);
  probe.disconnect();
  return { url, port, proc };
}

describe("receiver when Redis is unavailable", () => {
  let genDir: string;
  let study: GeneratedStudy;
  let rx: TestReceiver | undefined;
  let redisProc: ChildProcess | undefined;

  beforeAll(() => {
    genDir = tempDir("redis");
    study = generateStudy({
      outDir: genDir,
      seed: "redis-down",
      series: 1,
      instancesPerSeries: 3,
      fileSize: 2048,
    });
  });
  afterEach(async () => {
    await rx?.close().catch(() => {});
    rx = undefined;
    if (redisProc !== undefined && redisProc.exitCode === null) redisProc.kill("SIGKILL");
    redisProc = undefined;
  });
  afterAll(() => fs.rmSync(genDir, { recursive: true, force: true }));

  it("answers C-STORE with Out of Resources when nothing listens at the Redis URL, and archives nothing", async () => {
    rx = await startTestReceiver({ redis: { url: "redis://127.0.0.1:1" } }, { enqueueTimeoutMs: 1000 });
    const r = await storescu(rx.handle.port, [study.files[0]!], ["-v"]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/0xa700|Out ?of ?Resources/i);
    expect(r.stdout + r.stderr).not.toMatch(/Received Store Response \(Success\)/);
    expect(archivedFiles(rx.archive)).toEqual([]);
    expect(fs.readdirSync(path.join(rx.archive, ".tmp"))).toEqual([]);
    expect(rx.handle.stats()).toMatchObject({ instancesStored: 0, instancesFailed: 1 });
  });

  it("fails (and removes the file) once Redis goes away, and succeeds again when it is back", async () => {
    const redis = await startPrivateRedis();
    redisProc = redis.proc;
    rx = await startTestReceiver({ redis: { url: redis.url } }, { enqueueTimeoutMs: 1000 });
    const first = await storescu(rx.handle.port, [study.files[0]!]);
    expect(first.code, first.stderr).toBe(0);
    expect(archivedFiles(rx.archive)).toHaveLength(1);

    redis.proc.kill("SIGKILL");
    await new Promise((r) => redis.proc.once("exit", r));
    const second = await storescu(rx.handle.port, [study.files[1]!], ["-v"]);
    expect(second.code).not.toBe(0);
    expect(second.stdout + second.stderr).toMatch(/0xa700|Out ?of ?Resources/i);
    expect(archivedFiles(rx.archive)).toEqual([
      path.join(rx.archive, `scp_${study.studyInstanceUid}`, `MR.${study.sopInstanceUids[0]}`),
    ]);
    expect(fs.readdirSync(path.join(rx.archive, ".tmp"))).toEqual([]);

    // a duplicate of an acknowledged instance that fails to enqueue leaves the earlier copy in place
    const before = fs.statSync(archivedFiles(rx.archive)[0]!);
    const dup = await storescu(rx.handle.port, [study.files[0]!]);
    expect(dup.code).not.toBe(0);
    const after = fs.statSync(archivedFiles(rx.archive)[0]!);
    expect(after.ino).toBe(before.ino);
    expect(fs.readdirSync(path.join(rx.archive, ".tmp"))).toEqual([]);

    // Redis back on the same port: the producer reconnects and C-STOREs succeed again
    const again = await startPrivateRedis(redis.port);
    redisProc = again.proc;
    let third = await storescu(rx.handle.port, [study.files[2]!]);
    for (let i = 0; i < 20 && third.code !== 0; i++) {
      await new Promise((r) => setTimeout(r, 250));
      third = await storescu(rx.handle.port, [study.files[2]!]);
    }
    expect(third.code, third.stdout + third.stderr).toBe(0);
    expect(archivedFiles(rx.archive)).toHaveLength(2);
  });
});
