import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { Redis } from "ioredis";
import { pino, type Logger } from "pino";
import { configSchema, type FionaConfig, type FionaConfigInput } from "../../src/config/schema.js";

export const REDIS_URL = process.env.FIONA_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export function uniquePrefix(): string {
  return `test-web-${randomBytes(6).toString("hex")}`;
}

export function testConfig(prefix: string, extra: FionaConfigInput = {}): FionaConfig {
  return configSchema.parse({ ...extra, redis: { url: REDIS_URL, prefix, ...extra.redis } });
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
