/**
 * A private redis-server for one test: its own port (17300-17309 belong to test/ops) and its own
 * directory, so its settings can be anything and stopping it disturbs nobody.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { waitFor } from "../support/env.js";

export interface PrivateRedis {
  port: number;
  url: string;
  dir: string;
  /** A client for checks and admin commands (reconnects after a restart). */
  client(): Redis;
  /** Stop the server (SIGTERM: with AOF or save it writes its data first). */
  stop(): Promise<void>;
  /** Start it again on the same port and directory, with these arguments instead of the first ones. */
  start(args?: string[]): Promise<void>;
  /** Stop it and delete its directory. */
  remove(): Promise<void>;
}

async function answers(port: number): Promise<boolean> {
  const r = new Redis({
    port,
    host: "127.0.0.1",
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  r.on("error", () => {});
  try {
    await r.connect();
    return (await r.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

export async function startPrivateRedis(port: number, args: string[] = []): Promise<PrivateRedis> {
  if (await answers(port)) throw new Error(`port ${port} is taken by another Redis`);
  const dir = mkdtempSync(path.join(tmpdir(), `fiona-redis-${port}-`));
  let proc: ChildProcess | undefined;
  let current = args;
  const clients: Redis[] = [];

  const start = async (next = current) => {
    current = next;
    let stderr = "";
    const child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, ...next],
      {
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    proc = child;
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited: ${stderr}`);
        return answers(port);
      },
      `redis-server on ${port}`,
      10_000,
    );
  };
  const stop = async () => {
    const child = proc;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    client() {
      const r = new Redis({ port, host: "127.0.0.1" });
      r.on("error", () => {});
      clients.push(r);
      return r;
    },
    stop,
    start,
    async remove() {
      for (const c of clients) c.disconnect();
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
