/** `fiona start` (receiver, every worker and the web server in one process) as a benchmark peer. */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort, waitFor } from "../../test/support/env.js";

export interface Fiona {
  /** DICOM port (called AE "FIONA"). */
  port: number;
  /** Resolves once every one of `files` files of the study is linked under raw/ and classified. */
  waitIngested(studyUid: string, files: number): Promise<void>;
  /** Resolves once /api/studies shows the study as arrived (complete after the quiet time). */
  waitArrived(studyUid: string): Promise<void>;
  /** Resolves once the process is idle: under 5% of a core for 500 ms. */
  waitIdle(): Promise<void>;
  /** Peak resident memory since the process started (VmHWM), MB. */
  peakRssMb(): number;
  /** GET an /api path as the first administrator, parsed. */
  api<T>(apiPath: string): Promise<T>;
  stop(): Promise<void>;
}

/** Files of a study counted in series JSONs that are classified (NumFiles is read from raw/ on disk). */
function studyFilesIngested(dataDir: string, studyUid: string): number {
  const dir = path.join(dataDir, "site", "raw", studyUid);
  let n = 0;
  try {
    for (const f of readdirSync(dir)) {
      if (!f.endsWith(".json")) continue;
      const j = JSON.parse(readFileSync(path.join(dir, f), "utf8")) as {
        NumFiles?: string;
        ClassifyType?: string[];
      };
      if (j.ClassifyType) n += Number(j.NumFiles ?? 0);
    }
  } catch {
    return 0; // not there yet
  }
  return n;
}

/** utime + stime of a process in ms (/proc/<pid>/stat fields 14 and 15, 100 ticks per second). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // from field 3 on; comm may hold spaces
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * Ready for a benchmark: every /readyz check passes but Redis durability (the suite's Redis runs
 * without persistence, as in CI; the check only degrades readiness).
 */
export async function benchReady(httpPort: number): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined);
  if (!res) return false;
  const body = (await res.json().catch(() => ({}))) as { checks?: Record<string, { ok: boolean }> };
  const checks = Object.entries(body.checks ?? {}).filter(([name]) => name !== "redisDurability");
  return checks.length > 0 && checks.every(([, c]) => c.ok);
}

/** Basic auth as the administrator the first start created (its password is in the data directory). */
export function adminAuth(dataDir: string): string {
  const password = readFileSync(path.join(dataDir, "initial-admin-password"), "utf8").trim();
  return `Basic ${Buffer.from(`admin:${password}`).toString("base64")}`;
}

/** Arrival quiet time: a study counts as complete once no image came for this long. */
export const QUIET_SECONDS = 1;

/**
 * `config`: a configuration file's content (projects, routing rules, secret…) for this FIONA; the
 * data directory, ports, Redis prefix, quiet time and log level are always the benchmark's.
 */
export async function startFiona(dataDir: string, config?: Record<string, unknown>): Promise<Fiona> {
  const configFile = `${dataDir}.config.json`;
  if (config) writeFileSync(configFile, JSON.stringify(config));
  const port = await freePort();
  const httpPort = await freePort();
  // BENCH_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", to profile the FIONA process.
  const nodeArgs = process.env.BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, "bin/fiona.js", "start"], {
    env: {
      ...process.env,
      FIONA_DATA_DIR: dataDir,
      FIONA_DICOM_PORT: String(port),
      FIONA_HTTP_PORT: String(httpPort),
      // A new prefix per process: a FIONA started here never sees Redis state of an earlier run.
      FIONA_REDIS_PREFIX: `bench-${randomBytes(4).toString("hex")}`,
      FIONA_QUIET_SECONDS: String(QUIET_SECONDS),
      FIONA_LOG_LEVEL: "warn",
      ...(config ? { FIONA_CONFIG: configFile } : {}),
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const pid = child.pid!;
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
  await waitFor(() => benchReady(httpPort), "FIONA ready", 30_000).catch(async (e: unknown) => {
    await stop();
    throw e;
  });
  const auth = adminAuth(dataDir);
  return {
    port,
    waitIngested: async (studyUid, files) => {
      await waitFor(
        () => studyFilesIngested(dataDir, studyUid) === files || undefined,
        "every file ingested",
        120_000,
        10,
      );
    },
    waitArrived: async (studyUid) => {
      await waitFor(
        async () => {
          const res = await fetch(`http://127.0.0.1:${httpPort}/api/studies`, {
            headers: { Authorization: auth },
          });
          const list = (await res.json()) as Array<{
            studyInstanceUid: string;
            status: string;
          }>;
          return list.some((s) => s.studyInstanceUid === studyUid && s.status === "arrived") || undefined;
        },
        "study arrived",
        60_000,
        20,
      );
    },
    waitIdle: async () => {
      for (let last = cpuMs(pid); ;) {
        await sleep(500);
        const now = cpuMs(pid);
        if (now - last < 25) return;
        last = now;
      }
    },
    peakRssMb: () => {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      return m ? Number(m[1]) / 1024 : NaN;
    },
    api: async <T>(apiPath: string) => {
      const res = await fetch(`http://127.0.0.1:${httpPort}/api${apiPath}`, {
        headers: { Authorization: auth },
      });
      if (!res.ok) throw new Error(`GET /api${apiPath}: ${res.status}`);
      return (await res.json()) as T;
    },
    stop,
  };
}
