import { execFile } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { SitePaths } from "../../src/paths.js";
import { createRedis } from "../../src/queues/connection.js";
import { QUEUES, createQueue } from "../../src/queues/index.js";
import { startReceiver, type ReceiverHandle } from "../../src/receiver/index.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { generateStudy } from "../support/generate.js";

const run = promisify(execFile);
const log = createLogger("silent");
let cfg: FionaConfig;
let receiver: ReceiverHandle;
let workers: WorkersHandle[];

beforeAll(async () => {
  cfg = testConfig({ dicomHost: "127.0.0.1", arrival: { quietSeconds: 1 }, ingest: { concurrency: 8 } });
  receiver = await startReceiver(cfg, { port: 0, log });
  workers = [await startWorkers(cfg, log), await startWorkers(cfg, log)];
});

afterAll(async () => {
  await receiver?.close();
  await Promise.all((workers ?? []).map((w) => w.close()));
  if (cfg) await cleanup(cfg);
});

describe("four parallel associations into one series, two workers", () => {
  it("keeps NumFiles exact while the same images arrive several times at once", async () => {
    const study = generateStudy({
      outDir: mkdtempSync(path.join(tmpdir(), "fiona-par-gen-")),
      seed: "parallel",
      series: 1,
      instancesPerSeries: 120,
      fileSize: 8192,
    });
    // Four overlapping slices of the same series: every image is sent two or three times.
    const slices = [
      [0, 60],
      [30, 90],
      [60, 120],
      [0, 120],
    ];
    const dirs = slices.map(([from, to], n) => {
      const dir = mkdtempSync(path.join(tmpdir(), `fiona-par-${n}-`));
      mkdirSync(dir, { recursive: true });
      for (const f of study.files.slice(from, to)) cpSync(f, path.join(dir, path.basename(f)));
      return dir;
    });
    await Promise.all(
      dirs.map((dir, n) =>
        run(
          "storescu",
          ["-aet", `MOD${n}`, "-aec", "FIONA", "+sd", "127.0.0.1", String(receiver.port), dir],
          {
            env: { ...process.env, TCP_NODELAY: "1" },
          },
        ),
      ),
    );
    const paths = new SitePaths(cfg.dataDir);
    const json = paths.seriesJson(study.studyInstanceUid, study.seriesInstanceUids[0]!);
    const summary = await waitFor(
      () => {
        try {
          const j = JSON.parse(readFileSync(json, "utf8")) as { NumFiles: string };
          return j.NumFiles === "120" ? j : undefined;
        } catch {
          return undefined;
        }
      },
      "NumFiles to reach 120",
      30_000,
    );
    // Once every ingest job is done, nothing may have overshot.
    const conn = createRedis(cfg.redis, "worker");
    const q = createQueue(QUEUES.ingest, conn, cfg.redis.prefix);
    await waitFor(async () => {
      const c = await q.getJobCounts("waiting", "active", "delayed");
      return (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) === 0 || undefined;
    }, "ingest to drain");
    await q.close();
    conn.disconnect();
    const final = JSON.parse(readFileSync(json, "utf8")) as {
      NumFiles: string;
      IncomingConnection: { AETitleCaller: string };
    };
    expect(final.NumFiles).toBe("120");
    expect(summary.NumFiles).toBe("120");
    expect(final.IncomingConnection.AETitleCaller).toMatch(/^MOD[0-3]$/);
  });
});
