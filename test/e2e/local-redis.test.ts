import { spawn } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { redisAnswers } from "../../src/queues/connection.js";
import { freePort, waitFor } from "../support/env.js";

async function startFiona(env: NodeJS.ProcessEnv) {
  const dataDir = mkdtempSync(path.join(tmpdir(), "fiona-local-redis-"));
  const httpPort = await freePort();
  const child = spawn(process.execPath, ["bin/fiona.js", "start"], {
    env: {
      ...process.env,
      FIONA_DATA_DIR: dataDir,
      FIONA_DICOM_PORT: String(await freePort()),
      FIONA_HTTP_PORT: String(httpPort),
      FIONA_LOG_LEVEL: "warn",
      FIONA_CONFIG: "",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
  return { child, dataDir, httpPort, exited, stdout: () => stdout, stderr: () => stderr };
}

describe("fiona start without a running Redis", () => {
  it("starts redis-server as a child with AOF and noeviction, and stops it on exit", async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    const f = await startFiona({ REDIS_URL: url });
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${f.httpPort}/readyz`).catch(() => undefined))?.ok,
      "ready",
      30_000,
      100,
    );
    const r = new Redis(url);
    expect((await r.config("GET", "appendonly")) as string[]).toEqual(["appendonly", "yes"]);
    expect((await r.config("GET", "maxmemory-policy")) as string[]).toEqual([
      "maxmemory-policy",
      "noeviction",
    ]);
    expect(((await r.config("GET", "dir")) as string[])[1]).toBe(path.join(f.dataDir, "redis"));
    r.disconnect();
    f.child.kill("SIGTERM");
    expect(await f.exited).toBe(0);
    expect(await redisAnswers(url, 300)).toBe(false);
    expect(existsSync(path.join(f.dataDir, "redis"))).toBe(true);
  });

  it("explains how to get Redis when redis-server is not on the PATH", async () => {
    const port = await freePort();
    const f = await startFiona({ REDIS_URL: `redis://127.0.0.1:${port}`, PATH: "/nonexistent" });
    expect(await f.exited).toBe(1);
    // A role's failure is one JSON event in its log (stdout), not also a line on stderr.
    const failed = f
      .stdout()
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { event?: string; err?: string })
      .find((e) => e.event === "role-failed");
    expect(failed?.err).toMatch(
      /no Redis answers at 127\.0\.0\.1:\d+\. Install it \(Debian: apt-get install redis-server\)/,
    );
    expect(f.stderr()).toBe("");
  });
});
