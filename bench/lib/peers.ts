/** Real DICOM peers for benchmarks: dcmtk storescp/storescu and Orthanc, run side by side. */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { freePort, waitFor } from "../../test/support/env.js";

export const NODELAY_ENV = { ...process.env, TCP_NODELAY: "1" };

export const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

export interface Peer {
  port: number;
  aet: string;
  stop(): Promise<void>;
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

async function listening(port: number): Promise<void> {
  await waitFor(
    () =>
      spawnSync("echoscu", ["-to", "1", "127.0.0.1", String(port)], { env: NODELAY_ENV }).status === 0 || undefined,
    `DICOM peer on port ${port}`,
    30_000,
    100,
  );
}

/** dcmtk storescp writing every file to outDir. */
export async function startStorescp(outDir: string): Promise<Peer> {
  mkdirSync(outDir, { recursive: true });
  const port = await freePort();
  const child = spawn("storescp", ["-aet", "STORESCP", "-od", outDir, "+xa", String(port)], {
    env: NODELAY_ENV,
    stdio: "ignore",
  });
  await listening(port);
  return { port, aet: "STORESCP", stop: () => stopChild(child) };
}

export const ORTHANC_BIN = "/usr/sbin/Orthanc";

/** Orthanc with a private storage folder and SQLite index; undefined when Orthanc is not installed. */
export async function startOrthanc(dir: string): Promise<(Peer & { httpPort: number }) | undefined> {
  if (!existsSync(ORTHANC_BIN)) return undefined;
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const httpPort = await freePort();
  const config = path.join(dir, "orthanc.json");
  writeFileSync(
    config,
    JSON.stringify({
      Name: "bench",
      StorageDirectory: path.join(dir, "storage"),
      IndexDirectory: path.join(dir, "index"),
      DicomAet: "ORTHANC",
      DicomPort: port,
      HttpPort: httpPort,
      RemoteAccessAllowed: false,
      AuthenticationEnabled: false,
      DicomCheckCalledAet: false,
      UnknownSopClassAccepted: true,
      Plugins: [],
    }),
  );
  const child = spawn(ORTHANC_BIN, [config], { env: NODELAY_ENV, stdio: "ignore" });
  await listening(port);
  return { port, httpPort, aet: "ORTHANC", stop: () => stopChild(child) };
}

/** Wall time of storescu sending every file under dir over one association. */
export function timeStorescu(dir: string, port: number, calledAe: string): number {
  const t0 = performance.now();
  const r = spawnSync("storescu", ["-aec", calledAe, "-aet", "BENCH", "+sd", "+r", "127.0.0.1", String(port), dir], {
    env: NODELAY_ENV,
    encoding: "utf8",
  });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`storescu failed: ${r.stderr.slice(0, 500)}`);
  return ms;
}

/** Wall time of several storescu processes in parallel, one folder (association) each. */
export async function timeParallelStorescu(dirs: string[], port: number, calledAe: string): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    dirs.map(
      (dir) =>
        new Promise<void>((resolve, reject) => {
          const c = spawn("storescu", ["-aec", calledAe, "-aet", "BENCH", "+sd", "+r", "127.0.0.1", String(port), dir], {
            env: NODELAY_ENV,
            stdio: "ignore",
          });
          c.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`storescu exited ${code}`))));
        }),
    ),
  );
  return performance.now() - t0;
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
