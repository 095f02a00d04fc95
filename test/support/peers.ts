/**
 * Real peers for SCU tests and the send benchmark: dcmtk storescp and Orthanc, each with
 * TCP_NODELAY=1 (without it every message costs ~45 ms of delayed-ACK latency).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { freePort } from "./env.js";

export const ORTHANC = "/usr/sbin/Orthanc";

export function hasCommand(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" }).status === 0;
}

/** Whether something listens on the TCP port (from /proc, so the check opens no connection). */
function isListening(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")} `;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, "latin1").split("\n")) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === "0A" && `${cols[1]} `.includes(hex)) return true;
    }
  }
  return false;
}

async function waitUntil(
  check: () => boolean | Promise<boolean>,
  what: string,
  child: ChildProcess,
  timeoutMs = 10_000,
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error(`${what} did not start within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
  await exited;
  clearTimeout(timer);
}

export interface Storescp {
  port: number;
  /** Output directory (-od). */
  dir: string;
  /** stdout + stderr so far (with -v: one "Association Received" line per association). */
  output(): string;
  /** Number of associations storescp has received so far. */
  associations(): number;
  stop(): Promise<void>;
}

/**
 * storescp -v +B (bit-preserving: the dataset is written exactly as received) -aet RESEARCH.
 * `args` add options, e.g. ["+xa"] (all transfer syntaxes), ["+xi"] or ["-xf", cfg, profile].
 * `verbose: false` drops -v (then `associations()` counts nothing), `bitPreserving: false` drops +B.
 */
export async function startStorescp(
  dir: string,
  args: string[] = ["+xa"],
  opts: { verbose?: boolean; bitPreserving?: boolean; port?: number } = {},
): Promise<Storescp> {
  mkdirSync(dir, { recursive: true });
  const port = opts.port ?? (await freePort());
  const base = [...(opts.verbose === false ? [] : ["-v"]), ...(opts.bitPreserving === false ? [] : ["+B"])];
  const child = spawn("storescp", [...base, "-od", dir, "-aet", "RESEARCH", ...args, String(port)], {
    env: { ...process.env, TCP_NODELAY: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  await waitUntil(() => isListening(port), "storescp", child);
  return {
    port,
    dir,
    output: () => output,
    associations: () => output.split("\n").filter((l) => l.includes("Association Received")).length,
    stop: () => stopChild(child),
  };
}

export interface Orthanc {
  dicomPort: number;
  httpPort: number;
  url: string;
  stop(): Promise<void>;
}

/**
 * Orthanc with a temporary config and storage under `dir`; AE RESEARCH, no HTTP auth, localhost only.
 * `extra` adds or overrides configuration options (e.g. DicomAlwaysAllowFind, LimitFindResults).
 */
export async function startOrthanc(dir: string, extra: Record<string, unknown> = {}): Promise<Orthanc> {
  mkdirSync(path.join(dir, "db"), { recursive: true });
  const dicomPort = await freePort();
  const httpPort = await freePort();
  const config = path.join(dir, "orthanc.json");
  writeFileSync(
    config,
    JSON.stringify({
      Name: "fiona-test",
      StorageDirectory: path.join(dir, "db"),
      IndexDirectory: path.join(dir, "db"),
      DicomAet: "RESEARCH",
      DicomPort: dicomPort,
      HttpPort: httpPort,
      RemoteAccessAllowed: false,
      AuthenticationEnabled: false,
      Plugins: [],
      ...extra,
    }),
  );
  const child = spawn(ORTHANC, [config], {
    env: { ...process.env, TCP_NODELAY: "1" },
    stdio: "ignore",
  });
  const url = `http://127.0.0.1:${httpPort}`;
  await waitUntil(
    async () =>
      isListening(dicomPort) &&
      (await fetch(`${url}/system`).then(
        (r) => r.ok,
        () => false,
      )),
    "Orthanc",
    child,
    20_000,
  );
  // Orthanc takes ~3 s to stop on SIGTERM/SIGINT; its storage is thrown away, so kill it.
  return { dicomPort, httpPort, url, stop: () => stopChild(child, "SIGKILL") };
}

export interface Dcmqrscp {
  port: number;
  /** Storage directory of the AE (dcmqrscp keeps its index.dat there). */
  dir: string;
  stop(): Promise<void>;
}

/**
 * dcmtk's dcmqrscp as a Q/R SCP (C-STORE, C-FIND, C-MOVE) with one read-write AE, `aeTitle` (default
 * RESEARCH), storing under `dir`. `hosts` are HostTable lines (`NAME = (AE, host, port)`) for C-MOVE
 * destinations. Its C-FIND matches only the keys its index holds (not InstitutionName, no
 * NumberOfStudyRelated* counts).
 */
export async function startDcmqrscp(
  dir: string,
  opts: { aeTitle?: string; hosts?: string[] } = {},
): Promise<Dcmqrscp> {
  const storage = path.join(dir, "db");
  mkdirSync(storage, { recursive: true });
  const port = await freePort();
  const config = path.join(dir, "dcmqrscp.cfg");
  writeFileSync(
    config,
    [
      `NetworkTCPPort = ${port}`,
      "MaxPDUSize = 16384",
      "MaxAssociations = 16",
      "HostTable BEGIN",
      ...(opts.hosts ?? []),
      "HostTable END",
      "VendorTable BEGIN",
      "VendorTable END",
      "AETable BEGIN",
      `${opts.aeTitle ?? "RESEARCH"} ${storage} RW (1000, 1024mb) ANY`,
      "AETable END",
      "",
    ].join("\n"),
  );
  const child = spawn("dcmqrscp", ["-c", config], {
    env: { ...process.env, TCP_NODELAY: "1" },
    stdio: "ignore",
  });
  await waitUntil(() => isListening(port), "dcmqrscp", child);
  return { port, dir: storage, stop: () => stopChild(child) };
}
