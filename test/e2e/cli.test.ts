import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StudyEntry } from "../../src/registry/studies.js";
import type { TransferRecord } from "../../src/registry/transfers.js";
import { cleanup, freePort, testConfig, waitFor } from "../support/env.js";
import { generateStudy } from "../support/generate.js";
import { startStorescp, type Storescp } from "../support/peers.js";
import type { FionaConfig } from "../../src/config/schema.js";

const run = promisify(execFile);
const NODELAY = { ...process.env, TCP_NODELAY: "1" };
let cfg: FionaConfig;
let configFile: string;
let fiona: ChildProcess;
let pacs: Storescp;
let stderr = "";

/** `fiona <args>` against the same config as the running pipeline. */
async function cli(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ["bin/fiona.js", "--config", configFile, ...args], {
    env: { ...process.env, FIONA_LOG_LEVEL: "error" },
  });
  return stdout;
}

const study = generateStudy({
  outDir: mkdtempSync(path.join(tmpdir(), "fiona-cli-gen-")),
  seed: "cli",
  modality: "MR",
  series: [
    { description: "t1_mprage_tra", orientation: "axial" },
    { description: "t2_tse_sag", orientation: "sagittal" },
  ],
  instancesPerSeries: 5,
  fileSize: 8192,
});

beforeAll(async () => {
  pacs = await startStorescp(mkdtempSync(path.join(tmpdir(), "fiona-cli-pacs-")), ["+xa"]);
  cfg = testConfig({
    dicomPort: await freePort(),
    httpPort: await freePort(),
    arrival: { quietSeconds: 1 },
    secret: "cli-secret-0123456789",
    projects: [
      {
        name: "CLI",
        participantPattern: "CLI_[0-9]{3}",
        destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: pacs.port },
      },
    ],
  });
  configFile = path.join(cfg.dataDir, "fiona.config.json");
  writeFileSync(configFile, JSON.stringify({ ...cfg, log: { level: "warn" } }));
  fiona = spawn(process.execPath, ["bin/fiona.js", "--config", configFile, "start"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  fiona.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  await waitFor(
    async () => (await fetch(`http://127.0.0.1:${cfg.httpPort}/readyz`).catch(() => undefined))?.ok,
    "fiona start to be ready",
    30_000,
    100,
  );
});

afterAll(async () => {
  if (fiona.exitCode === null) fiona.kill("SIGKILL");
  await pacs?.stop();
  if (cfg) await cleanup(cfg);
});

describe("fiona start and the CLI", () => {
  it("answers C-ECHO", async () => {
    await run("echoscu", ["-aec", "FIONA", "127.0.0.1", String(cfg.dicomPort)], { env: NODELAY });
  });

  it("receives a study from storescu, files, classifies and lists it without patient identity", async () => {
    await run(
      "storescu",
      ["-aet", "SCANNER1", "-aec", "FIONA", "+sd", "+r", "127.0.0.1", String(cfg.dicomPort), study.dir],
      {
        env: NODELAY,
      },
    );
    const studies = await waitFor(async () => {
      const list = JSON.parse(await cli("studies", "--json")) as StudyEntry[];
      return list[0]?.status === "arrived" ? list : undefined;
    }, "the study to arrive");
    expect(studies).toHaveLength(1);
    const s = studies[0]!;
    expect(s).toMatchObject({
      studyInstanceUid: study.studyInstanceUid,
      callingAe: "SCANNER1",
      calledAe: "FIONA",
      modalities: ["MR"],
    });
    expect(s.series.map((x) => x.numFiles)).toEqual([5, 5]);
    const types = Object.fromEntries(s.series.map((x) => [x.seriesDescription, x.classifyType]));
    expect(types["t1_mprage_tra"]).toEqual(expect.arrayContaining(["MR", "axial"]));
    expect(types["t2_tse_sag"]).toEqual(expect.arrayContaining(["MR", "sagittal"]));

    const plain = await cli("studies");
    expect(plain).toContain(study.studyInstanceUid);
    expect(plain).not.toContain(study.phi.patientName);
    expect(plain).not.toContain(study.phi.patientId);
    expect(await cli("studies", "--show-phi")).toContain(study.phi.patientId);

    const status = JSON.parse(await cli("status", "--json")) as {
      queues: Record<string, { failed: number }>;
    };
    expect(status.queues.ingest?.failed).toBe(0);
    expect(Object.keys(status.queues)).toEqual(
      expect.arrayContaining(["ingest", "arrival", "study-arrived", "send"]),
    );
  });

  it("explains the classification of one file", async () => {
    const out = await cli("rules", "test", study.files[0]!);
    expect(out).toMatch(/ClassifyType: .*"axial"/);
    expect(out).toContain("MATCH");
    expect(out).not.toContain(study.phi.patientName);
  });

  it("s2m sends the archived study again without inflating NumFiles", async () => {
    await run(process.execPath, ["bin/fiona.js", "--config", configFile, "s2m", study.studyInstanceUid], {
      env: { ...process.env, FIONA_LOG_LEVEL: "error" },
    });
    const list = await waitFor(async () => {
      const l = JSON.parse(await cli("studies", "--json")) as StudyEntry[];
      return l[0]?.arrivals === 2 ? l : undefined;
    }, "the re-sent study to arrive again");
    expect(list[0]!.series.map((x) => x.numFiles)).toEqual([5, 5]);
  });

  it("assigns the study and reports the transfer", async () => {
    await expect(cli("assign", study.studyInstanceUid, "-p", "CLI", "-s", "bad")).rejects.toThrow(/pattern/);
    expect(await cli("assign", study.studyInstanceUid, "-p", "CLI", "-s", "CLI_001")).toMatch(
      /2 series queued/,
    );
    const t = await waitFor(async () => {
      const l = JSON.parse(await cli("transfers", "--json")) as TransferRecord[];
      return l[0]?.status === "done" ? l[0] : undefined;
    }, "the transfer");
    expect(t).toMatchObject({ project: "CLI", participant: "CLI_001", filesSent: 10, filesFailed: 0 });
  });

  it("pseudonymizes a folder offline with fiona deid", async () => {
    const out = mkdtempSync(path.join(tmpdir(), "fiona-cli-deid-"));
    expect(await cli("deid", study.dir, out, "-p", "CLI", "-s", "CLI_002")).toMatch(
      /^10 of 10 files written/,
    );
    const files = readdirSync(out);
    expect(files).toHaveLength(10);
    for (const f of files) {
      const bytes = readFileSync(path.join(out, f));
      expect(bytes.includes(Buffer.from(study.phi.patientName))).toBe(false);
      expect(bytes.includes(Buffer.from(study.phi.patientId))).toBe(false);
      expect(bytes.includes(Buffer.from("CLI_002"))).toBe(true);
    }
    await expect(cli("deid", study.dir, out, "-p", "CLI", "-s", "nope")).rejects.toThrow(/pattern/);
  });

  it("prints the effective configuration with the secret redacted", async () => {
    const out = await cli("config", "check");
    expect(out).toContain(`"dicomPort": ${cfg.dicomPort}`);
    expect(out).not.toContain("cli-secret-0123456789");
  });

  it("stops gracefully on SIGTERM", async () => {
    const exited = new Promise<number | null>((r) => fiona.once("exit", (code) => r(code)));
    fiona.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(stderr).not.toContain(study.phi.patientName);
  });
});
