import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { Redis } from "ioredis";
import { pino, type Logger } from "pino";
import { configSchema, type FionaConfig, type FionaConfigInput } from "../../src/config/schema.js";
import { hashPassword } from "../../src/web/password.js";

export const REDIS_URL = process.env.FIONA_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export function uniquePrefix(): string {
  return `test-web-${randomBytes(6).toString("hex")}`;
}

/** A config on its own Redis prefix and, unless `extra` names one, its own temporary data directory. */
export function testConfig(prefix: string, extra: FionaConfigInput = {}): FionaConfig {
  return configSchema.parse({
    ...extra,
    dataDir: extra.dataDir ?? mkdtempSync(path.join(tmpdir(), "fiona-web-")),
    redis: { url: REDIS_URL, prefix, ...extra.redis },
  });
}

/** A pino logger that keeps every line, to check what the server logs (and that it logs no secrets). */
export function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString("utf8"));
      cb();
    },
  });
  return { logger: pino({ level: "trace" }, stream), lines };
}

/** Deletes every key under `prefix:` (queues, events, meta). */
export async function deletePrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 500);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== "0");
}

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, "utf8").toString("base64")}`;
}

/** An administrator for tests of what any signed-in user sees (a web.users entry; cheap scrypt). */
export const TEST_ADMIN = { name: "test-admin", password: "test-admin-password" } as const;

export const testAdminUser = {
  name: TEST_ADMIN.name,
  passwordHash: hashPassword(TEST_ADMIN.password, { N: 2 ** 10 }),
  role: "admin" as const,
};

/** Headers signing a script in as TEST_ADMIN (writes also need Content-Type: application/json). */
export const asTestAdmin = { Authorization: basic(TEST_ADMIN.name, TEST_ADMIN.password) };
