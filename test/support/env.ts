import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { configSchema, type FionaConfig, type FionaConfigInput } from "../../src/config/schema.js";

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** A config for one test file: its own Redis prefix and data directory. */
export function testConfig(overrides: FionaConfigInput = {}): FionaConfig {
  const dataDir = mkdtempSync(path.join(tmpdir(), "fiona-test-"));
  return configSchema.parse({
    dataDir,
    // The suite's Redis runs without persistence (.ci/run): fine for tests, flagged in production.
    redis: {
      url: REDIS_URL,
      prefix: `test-${randomBytes(4).toString("hex")}`,
      startLocal: false,
      requireDurable: false,
    },
    log: { level: "silent" },
    ...overrides,
  });
}

/** Delete every key under the config's prefix and its data directory. */
export async function cleanup(cfg: FionaConfig): Promise<void> {
  const r = new Redis(cfg.redis.url);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await r.scan(cursor, "MATCH", `${cfg.redis.prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length) await r.unlink(...keys);
    } while (cursor !== "0");
  } finally {
    r.disconnect();
  }
  rmSync(cfg.dataDir, { recursive: true, force: true });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 20_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
