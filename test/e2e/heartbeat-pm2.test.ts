/**
 * The heartbeat's exit is a restart: the receiver runs under a real pm2 (its own PM2_HOME) with a
 * small open-file limit, connections from two other addresses use up its file descriptors so that it
 * can accept nothing (not even its own heartbeat), the heartbeat fails twice, the process exits
 * non-zero, pm2 starts it again and dcmtk's echoscu gets an answer from the new process. (A receiver
 * that is merely full, with every association slot taken, keeps passing: test/schedules/heartbeat.)
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { cleanup, freePort, testConfig, waitFor } from "../support/env.js";
import net from "node:net";

const run = promisify(execFile);
const FD_LIMIT = 128;

/** Idle connections from 127.0.0.2 and 127.0.0.3, re-opened as the receiver closes them. */
function exhaustFileDescriptors(port: number) {
  const sockets = new Set<net.Socket>();
  let stopped = false;
  const open = (localAddress: string) => {
    if (stopped) return;
    const s = net.connect({ host: "127.0.0.1", port, localAddress });
    s.on("error", () => {});
    s.once("close", () => {
      sockets.delete(s);
      setTimeout(() => open(localAddress), 50);
    });
    sockets.add(s);
  };
  for (let i = 0; i < FD_LIMIT; i++) open(i % 2 === 0 ? "127.0.0.2" : "127.0.0.3");
  return {
    destroy() {
      stopped = true;
      for (const s of sockets) s.destroy();
    },
  };
}
const ROOT = path.resolve(import.meta.dirname, "../..");
const PM2 = path.join(ROOT, "node_modules/.bin/pm2");
let cfg: FionaConfig;
let port: number;
let home: string;
let env: NodeJS.ProcessEnv;

interface Pm2Proc {
  pid: number;
  pm2_env: { status: string; restart_time: number; exit_code?: number };
}
const pm2 = (...args: string[]) => run(PM2, args, { env, cwd: ROOT });
const proc = async (): Promise<Pm2Proc | undefined> =>
  (JSON.parse((await pm2("jlist")).stdout) as Pm2Proc[])[0];
const echo = () =>
  run("echoscu", ["-to", "3", "-aec", "FIONA", "127.0.0.1", String(port)], {
    env: { ...process.env, TCP_NODELAY: "1" },
  }).then(
    () => true,
    () => false,
  );

beforeAll(async () => {
  port = await freePort();
  cfg = testConfig();
  home = mkdtempSync(path.join(tmpdir(), "fiona-pm2-"));
  const file = path.join(home, "fiona.config.json");
  writeFileSync(
    file,
    JSON.stringify({
      dataDir: cfg.dataDir,
      dicomPort: port,
      dicomHost: "127.0.0.1",
      redis: cfg.redis,
      receiver: { maxConnectionsPerPeer: 64 },
      schedules: {
        heartbeat: { every: 1000, failuresBeforeExit: 2, echoTimeoutMs: 2000, activityGraceSeconds: 1 },
      },
      log: { level: "info" },
    }),
  );
  env = { ...process.env, PM2_HOME: path.join(home, "pm2"), FIONA_CONFIG: file };
  // The pm2 daemon (started by this first command) and the receiver it spawns inherit the limit.
  await run(
    "sh",
    [
      "-c",
      `ulimit -n ${FD_LIMIT} && exec "$0" "$@"`,
      PM2,
      "start",
      path.join(ROOT, "bin/fiona.js"),
      "--name",
      "fiona-receiver",
      "--time",
      "--",
      "receiver",
    ],
    { env, cwd: ROOT },
  );
}, 60_000);

afterAll(async () => {
  await pm2("kill").catch(() => {});
  rmSync(home, { recursive: true, force: true });
  await cleanup(cfg);
});

describe("heartbeat under pm2", () => {
  it("a receiver out of file descriptors exits non-zero and pm2 restarts it into a working one", async () => {
    await waitFor(echo, "receiver answering C-ECHO", 30_000, 200);
    const first = (await proc())!;
    expect(first.pm2_env.restart_time).toBe(0);
    const wedge = exhaustFileDescriptors(port);
    try {
      const restarted = await waitFor(
        async () => {
          const p = await proc();
          return p && p.pm2_env.restart_time >= 1 && p.pid && p.pid !== first.pid ? p : undefined;
        },
        "pm2 restarting the receiver",
        45_000,
        250,
      );
      expect(restarted.pm2_env.exit_code).toBe(1);
    } finally {
      wedge.destroy();
    }
    expect(await waitFor(echo, "restarted receiver answering C-ECHO", 30_000, 200)).toBe(true);
  }, 120_000);
});
