/**
 * Shared setup for the receiver's integration tests: a receiver on an ephemeral port with a temp data
 * directory and a unique Redis prefix, dcmtk tools run asynchronously (the receiver shares the test's
 * event loop, so nothing here may block it), and dcmdump output normalised for comparisons.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { pino, type Logger } from "pino";
import { configSchema, type FionaConfig, type FionaConfigInput } from "../../src/config/schema.js";
import { createQueue, QUEUES, type TypedQueue } from "../../src/queues/index.js";
import { startReceiver, type ReceiverDeps, type ReceiverHandle } from "../../src/receiver/index.js";

const REDIS_URL = process.env.FIONA_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const DCMTK_ENV = { ...process.env, TCP_NODELAY: "1" };

export interface TestReceiver {
  cfg: FionaConfig;
  handle: ReceiverHandle;
  dataDir: string;
  archive: string;
  quarantine: string;
  prefix: string;
  /** Reads the ingest queue (its own connection). */
  queue: TypedQueue<"ingest">;
  redis: Redis;
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `fiona-recv-${tag}-`));
}

/** A logger that keeps every JSON line (to assert on events and on the absence of PHI). */
export function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: "debug" },
    { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
  return { logger, lines };
}

export async function startTestReceiver(
  input: Partial<FionaConfigInput> = {},
  deps: ReceiverDeps = {},
): Promise<TestReceiver> {
  const dataDir = tempDir("data");
  const prefix = `test-${randomBytes(6).toString("hex")}`;
  const cfg = configSchema.parse({
    dataDir,
    dicomHost: "127.0.0.1",
    ...input,
    redis: { url: REDIS_URL, prefix, ...(input.redis ?? {}) },
  });
  const { logger, lines } = captureLogger();
  const handle = await startReceiver(cfg, { port: 0, log: logger, ...deps });
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = createQueue(QUEUES.ingest, redis, prefix);
  return {
    cfg,
    handle,
    dataDir,
    archive: path.join(dataDir, "site", "archive"),
    quarantine: path.join(dataDir, "site", "quarantine-bad"),
    prefix,
    queue,
    redis,
    logs: lines,
    async close() {
      await handle.close();
      await queue.close();
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a program without blocking the event loop (the receiver under test runs in this process). */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = DCMTK_ENV): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : 1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** storescu to the test receiver; extra args go before host/port. */
export function storescu(port: number, files: string[], extra: string[] = []): Promise<RunResult> {
  return run("storescu", ["-aec", "FIONA", ...extra, "127.0.0.1", String(port), ...files]);
}

/**
 * `dcmdump -q +L` without group 0002 and with the length encoding of sequences and items normalised:
 * dcmtk's storescu re-encodes undefined-length sequences with explicit lengths when it sends, which
 * changes the encoding but not the content. When it converts implicit to explicit VR, private elements
 * of unknown VR ("??" in the implicit file) are sent as UN, so "??" is shown as UN.
 */
export async function normalizedDump(file: string): Promise<string[]> {
  const r = await run("dcmdump", ["-q", "+L", file]);
  if (r.code !== 0) throw new Error(`dcmdump failed on ${file}: ${r.stderr}`);
  return r.stdout
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#") && !l.startsWith("(0002,"))
    .filter((l) => !/^\(fffe,e00d\)|^\(fffe,e0dd\)/.test(l))
    .map((l) =>
      l
        .replace(/^(\([0-9a-f]{4},[0-9a-f]{4}\)) \?\? /, "$1 UN ")
        .replace(
          /\((Sequence|Item) with (?:undefined|explicit) length (#=\d+)\)\s+#\s*(?:u\/l|\d+),/,
          "($1 $2) #",
        )
        .replace(/\s+/g, " "),
    );
}

export function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out.sort();
}

/** Files under archive/ except the temporary directory. */
export function archivedFiles(archive: string): string[] {
  return listFiles(archive).filter((f) => !f.includes(`${path.sep}.tmp${path.sep}`));
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
