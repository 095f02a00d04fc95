import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { StudyRegistry } from "../../src/registry/studies.js";
import { freePort, testConfig, waitFor } from "../support/env.js";
import { generateStudy } from "../support/generate.js";
import { startPrivateRedis, type PrivateRedis } from "./redis-server.js";
import { startRole, type RoleProcess } from "./role-process.js";

const run = promisify(execFile);
const OUTAGE_MS = 8000;

let redis: PrivateRedis;
let cfg: FionaConfig;
let roles: Record<"worker" | "receiver" | "web", RoleProcess>;

const study = generateStudy({
  outDir: mkdtempSync(path.join(tmpdir(), "fiona-outage-gen-")),
  seed: "outage",
  series: 1,
  instancesPerSeries: 3,
  fileSize: 4096,
});

beforeAll(async () => {
  redis = await startPrivateRedis(17304, ["--appendonly", "no", "--save", ""]);
  const base = testConfig({
    dicomPort: await freePort(),
    httpPort: await freePort(),
    arrival: { quietSeconds: 1 },
    log: { level: "info" },
  });
  cfg = { ...base, redis: { ...base.redis, url: redis.url } };
  roles = {
    worker: startRole(cfg, ["worker", "--queues", "ingest,arrival,study-arrived"]),
    receiver: startRole(cfg, ["receiver"]),
    web: startRole(cfg, ["web"]),
  };
  await Promise.all([
    roles.worker.waitForEvent((e) => e.msg === "workers started", "workers started"),
    roles.receiver.waitForEvent((e) => e.event === "receiver-listening", "receiver listening"),
    roles.web.waitForEvent((e) => e.msg === "web listening", "web listening"),
  ]);
}, 60_000);

afterAll(async () => {
  if (roles) await Promise.all(Object.values(roles).map((r) => r.stop()));
  await redis?.remove();
  if (cfg) rmSync(cfg.dataDir, { recursive: true, force: true });
});

const readyz = async () => {
  const res = await fetch(`http://127.0.0.1:${cfg.httpPort}/readyz`);
  return { status: res.status, body: (await res.json()) as { checks: Record<string, { ok: boolean }> } };
};
const redisErrors = (r: RoleProcess) => r.events().filter((e) => e.event === "redis-error");

describe("a Redis outage", () => {
  it("is logged as a few JSON events per role, and every role carries on once Redis is back", async () => {
    // Ready once every role is up (the heartbeat worker starts after the receiver listens).
    await waitFor(async () => (await readyz()).status === 200, "web ready");
    const linesBefore = Object.fromEntries(Object.entries(roles).map(([n, r]) => [n, r.stdout.length]));

    await redis.stop();
    await new Promise((r) => setTimeout(r, OUTAGE_MS / 2));
    const during = await readyz();
    expect(during.status).toBe(503);
    expect(during.body.checks.redis).toEqual({ ok: false, detail: "not reachable" });
    await new Promise((r) => setTimeout(r, OUTAGE_MS / 2));
    await redis.start();

    for (const [name, role] of Object.entries(roles)) {
      await role.waitForEvent((e) => e.event === "redis-reconnected", `${name}: redis-reconnected`);
    }
    await waitFor(async () => (await readyz()).status === 200, "web ready again");

    // The receiver takes images again and the worker files them: the study reaches the registry.
    await run(
      "storescu",
      ["-aet", "SCANNER1", "-aec", "FIONA", "+sd", "+r", "127.0.0.1", String(cfg.dicomPort), study.dir],
      {
        env: { ...process.env, TCP_NODELAY: "1" },
      },
    );
    const registry = new StudyRegistry(redis.client(), cfg.redis.prefix);
    const entry = await waitFor(async () => {
      const s = await registry.get(study.studyInstanceUid);
      return s?.status === "arrived" ? s : undefined;
    }, "the study to arrive");
    expect(entry.series.reduce((n, s) => n + s.numFiles, 0)).toBe(3);

    for (const [name, role] of Object.entries(roles)) {
      expect(role.notJson(), `${name}: lines that are not JSON`).toEqual([]);
      const errors = redisErrors(role);
      // Every client retried many times (hundreds of attempts over all clients before); a handful of lines said so.
      const attempts = errors.reduce((n, e) => n + Number(e.count), 0);
      expect(errors.length, `${name}: redis-error lines`).toBeGreaterThan(0);
      expect(errors.length, `${name}: redis-error lines`).toBeLessThanOrEqual(8);
      expect(attempts, `${name}: errors counted`).toBeGreaterThan(3 * errors.length);
      for (const e of errors)
        expect(e).toMatchObject({ level: 50, err: expect.any(String), sources: expect.any(Array) });
      // Reported by FIONA's listeners, not caught by the console net (a library printing on its own).
      expect(
        role.events().filter((e) => e.event === "console"),
        `${name}: console output`,
      ).toEqual([]);
      const written = role.stdout.length - linesBefore[name]!;
      expect(written, `${name}: lines during and after the outage`).toBeLessThan(40);
    }
  }, 60_000);
});
