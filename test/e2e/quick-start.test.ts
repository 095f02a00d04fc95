/**
 * The README's quick start: `fiona start --demo` on an empty data directory, a study sent with
 * storescu, assigned by the first administrator (password from the file the first start wrote) to the
 * demo project, and back at this FIONA pseudonymized.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanup, freePort, testConfig, waitFor } from "../support/env.js";
import { generateStudy } from "../support/generate.js";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");
const cfg = testConfig({ arrival: { quietSeconds: 1 } });
let fiona: ChildProcess;
let dicomPort: number;
let httpPort: number;
let auth: string;

interface Study {
  studyInstanceUid: string;
  status: string;
  patientName?: string;
}

async function api<T>(pathname: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${httpPort}${pathname}`, {
    ...init,
    headers: { Authorization: auth, "Content-Type": "application/json", ...init.headers },
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${pathname}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

beforeAll(async () => {
  dicomPort = await freePort();
  httpPort = await freePort();
  fiona = spawn(process.execPath, ["bin/fiona.js", "start", "--demo"], {
    cwd: ROOT,
    env: {
      ...process.env,
      FIONA_CONFIG: "",
      FIONA_DATA_DIR: cfg.dataDir,
      FIONA_DICOM_PORT: String(dicomPort),
      FIONA_HTTP_PORT: String(httpPort),
      FIONA_REDIS_PREFIX: cfg.redis.prefix,
      FIONA_QUIET_SECONDS: "1",
      FIONA_LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  fiona.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  await waitFor(
    async () => {
      if (fiona.exitCode !== null) throw new Error(`fiona start --demo exited ${fiona.exitCode}: ${stderr}`);
      return (await fetch(`http://127.0.0.1:${httpPort}/healthz`).catch(() => undefined))?.ok;
    },
    "fiona start --demo to listen",
    30_000,
    100,
  );
  const password = readFileSync(path.join(cfg.dataDir, "initial-admin-password"), "utf8").trim();
  auth = `Basic ${Buffer.from(`admin:${password}`).toString("base64")}`;
}, 60_000);

afterAll(async () => {
  if (fiona?.exitCode === null) fiona.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, 500));
  if (fiona?.exitCode === null) fiona.kill("SIGKILL");
  await cleanup(cfg);
});

describe("the quick start", () => {
  it("assigns a received study to the demo project, and it comes back pseudonymized", async () => {
    const study = generateStudy({
      outDir: mkdtempSync(path.join(tmpdir(), "fiona-quick-")),
      seed: "quick-start",
      instancesPerSeries: 3,
      fileSize: 4096,
    });
    await run("storescu", ["-aec", "FIONA", "+sd", "+r", "127.0.0.1", String(dicomPort), study.dir], {
      env: { ...process.env, TCP_NODELAY: "1" },
    });
    await waitFor(
      async () =>
        (await api<Study[]>("/api/studies")).find((s) => s.studyInstanceUid === study.studyInstanceUid)
          ?.status === "arrived" || undefined,
      "the study to arrive",
      30_000,
    );
    const projects = await api<Array<{ name: string }>>("/api/projects");
    expect(projects.map((p) => p.name)).toContain("DEMO");
    const started = await api<{ requestId: string }>("/api/transfers", {
      method: "POST",
      body: JSON.stringify({
        studyInstanceUid: study.studyInstanceUid,
        project: "DEMO",
        participant: "DEMO_0001",
      }),
    });
    const back = await waitFor(
      async () => {
        const t = await api<{ status: string; pseudoStudyInstanceUid?: string }>(
          `/api/transfers/${started.requestId}`,
        );
        if (t.status !== "done" || !t.pseudoStudyInstanceUid) return undefined;
        return (await api<Study[]>("/api/studies")).find(
          (s) => s.studyInstanceUid === t.pseudoStudyInstanceUid,
        );
      },
      "the pseudonymized study back in the incoming list",
      60_000,
      250,
    );
    expect(back.studyInstanceUid).not.toBe(study.studyInstanceUid);
  }, 120_000);
});
