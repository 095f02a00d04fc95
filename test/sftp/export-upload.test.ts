import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Job } from "bullmq";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { exportCli } from "../../src/export/cli.js";
import { ExportStore } from "../../src/export/store.js";
import { createLogger } from "../../src/log.js";
import { sftpProcessor } from "../../src/processors/sftp.js";
import type { SftpJob } from "../../src/queues/index.js";
import { SitePaths } from "../../src/paths.js";
import { cleanup, testConfig } from "../support/env.js";
import { generateStudy } from "../support/generate.js";
import { hasSshd, startSshd, type TestSshd } from "./sshd.js";

let sshd: TestSshd;
let cfg: FionaConfig;

describe.skipIf(!hasSshd)("fiona export --upload and the sftp stage", () => {
  beforeAll(async () => {
    sshd = await startSshd();
    cfg = testConfig({
      secret: "export-upload-secret-0123456789",
      projects: [{ name: "PROJ", events: ["baseline"] }],
      exports: {
        sftp: {
          research: {
            host: "127.0.0.1",
            port: sshd.port,
            user: process.env.USER ?? "root",
            keyPath: sshd.userKey,
            remoteDir: sshd.remoteDir,
            hostKeySha256: sshd.hostFingerprint,
          },
          spoofed: {
            host: "127.0.0.1",
            port: sshd.port,
            user: "root",
            keyPath: sshd.userKey,
            remoteDir: sshd.remoteDir,
            hostKeySha256: sshd.otherFingerprint,
          },
        },
      },
    });
    const study = generateStudy({
      outDir: mkdtempSync(path.join(tmpdir(), "fiona-eu-")),
      seed: "eu",
      instancesPerSeries: 2,
      fileSize: 2048,
    });
    const dir = new SitePaths(cfg.dataDir).rawSeriesDir(study.studyInstanceUid, study.seriesInstanceUids[0]!);
    mkdirSync(dir, { recursive: true });
    study.files.forEach((f, i) => copyFileSync(f, path.join(dir, study.sopInstanceUids[i]!)));
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    try {
      await exportCli(cfg, study.studyInstanceUid, {
        project: "PROJ",
        participant: "P1",
        event: "baseline",
        layout: "pure",
        upload: "research",
      });
    } finally {
      log.mockRestore();
    }
  }, 30_000);
  afterAll(async () => {
    await sshd?.stop();
    if (cfg) await cleanup(cfg);
  });

  it("builds the export from the CLI and uploads it with its sidecar", async () => {
    const [rec] = await new ExportStore(cfg).list();
    expect(rec).toMatchObject({ status: "done", layout: "PURE" });
    const remote = path.join(sshd.remoteDir, rec!.downloadName);
    expect(readFileSync(remote)).toEqual(readFileSync(new ExportStore(cfg).zipPath(rec!.id)));
    expect(existsSync(`${remote}.sha256`)).toBe(true);
  });

  it("the sftp job reports progress and fails for good on a changed host key", async () => {
    const [rec] = await new ExportStore(cfg).list();
    const progress: number[] = [];
    const job = (destination: string) =>
      ({
        data: { exportId: rec!.id, destination },
        updateProgress: (p: number) => Promise.resolve(void progress.push(p)),
        log: () => Promise.resolve(0),
      }) as unknown as Job<SftpJob>;
    const run = sftpProcessor({ cfg, log: createLogger("silent") });
    const r = await run(job("research"));
    expect(r.attempts).toBe(1);
    expect(progress.at(-1)).toBe(100);
    await expect(run(job("spoofed"))).rejects.toMatchObject({ name: "UnrecoverableError" });
    expect(readdirSync(sshd.remoteDir).filter((f) => f.startsWith("."))).toEqual([]);
  });
});
