import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { ALL_QUEUES } from "../../src/queues/index.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const run = promisify(execFile);

interface App {
  name: string;
  args: string;
  autorestart: boolean;
  kill_timeout: number;
  out_file: string;
  error_file: string;
}
const apps = (createRequire(import.meta.url)(path.join(ROOT, "ecosystem.config.cjs")) as { apps: App[] })
  .apps;
const queuesOf = (args: string) => args.match(/--queues (\S+)/)?.[1]?.split(",") ?? [];

describe("deployment files", () => {
  it("pm2 runs receiver, three worker groups, web and scheduler, each restarted and logged to its own files", () => {
    expect(apps.map((a) => a.name)).toEqual([
      "fiona-receiver",
      "fiona-worker-ingest",
      "fiona-worker-transfer",
      "fiona-worker-jobs",
      "fiona-web",
      "fiona-scheduler",
    ]);
    for (const a of apps) {
      expect(a.autorestart).toBe(true);
      expect(a.kill_timeout).toBeGreaterThanOrEqual(15_000);
      expect(a.out_file).toMatch(new RegExp(`logs/${a.name}\\.out\\.log$`));
      expect(a.error_file).toMatch(new RegExp(`logs/${a.name}\\.err\\.log$`));
    }
  });

  it("the worker groups together cover every queue but the heartbeat (processed in the receiver)", () => {
    const covered = apps.flatMap((a) => queuesOf(a.args));
    expect(new Set(covered).size).toBe(covered.length);
    expect(covered.sort()).toEqual(ALL_QUEUES.filter((q) => q !== "heartbeat").sort());
  });

  it("docker-compose.yml passes `docker-compose config` with the same roles", async () => {
    const { stdout } = await run("docker-compose", [
      "-f",
      path.join(ROOT, "docker-compose.yml"),
      "config",
      "--services",
    ]);
    expect(stdout.split("\n").filter(Boolean).sort()).toEqual([
      "orthanc",
      "receiver",
      "redis",
      "scheduler",
      "web",
      "worker-ingest",
      "worker-jobs",
      "worker-transfer",
    ]);
  });
});
