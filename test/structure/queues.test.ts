import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { readdirSync } from "node:fs";
import { configSchema } from "../../src/config/schema.js";
import { ROLE_OF, STAGES, concurrencyOf, type Role } from "../../src/processors/index.js";
import { ALL_QUEUES, type QueueName } from "../../src/queues/index.js";

const PROCESSORS = path.resolve(import.meta.dirname, "../../src/processors");
/** The stage files: every processor but the job table and the contract's type. */
const stageFiles = () =>
  readdirSync(PROCESSORS).filter((f) => f.endsWith(".ts") && f !== "index.ts" && f !== "stage.ts");
/** send.ts -> sendProcessor, study-arrived.ts -> studyArrivedProcessor. */
const factoryName = (file: string) =>
  `${file.slice(0, -3).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())}Processor`;

const README = readFileSync(path.resolve(import.meta.dirname, "../../README.md"), "utf8");

describe("the README's queue table", () => {
  const section = README.slice(
    README.indexOf("## Queues"),
    README.indexOf("\n## ", README.indexOf("## Queues") + 1),
  );
  const rows = [...section.matchAll(/^\| `([a-z-]+)` \| ([a-z-]+) \| ([^|]+) \|/gm)].map((m) => ({
    queue: m[1] as QueueName,
    role: m[2],
    concurrency: m[3]!.trim(),
  }));

  it("lists every queue once, and no queue that does not exist", () => {
    expect(rows.map((r) => r.queue).sort()).toEqual([...ALL_QUEUES].sort());
  });

  it("gives each queue the role and the concurrency (key and default) of the job table", () => {
    const defaults = configSchema.parse({});
    for (const { queue, role, concurrency } of rows) {
      const c = STAGES[queue].concurrency;
      expect(role, queue).toBe(STAGES[queue].role);
      expect(concurrency, queue).toBe(
        "fixed" in c ? `1 (${c.why})` : `\`${c.key}\` (${concurrencyOf(defaults, queue)})`,
      );
    }
  });
});

describe("the job table", () => {
  it("reads each queue's concurrency from its configuration key", () => {
    const cfg = configSchema.parse({ concurrency: { send: 9 }, ingest: { concurrency: 7 } });
    expect(concurrencyOf(cfg, "send")).toBe(9);
    expect(concurrencyOf(cfg, "ingest")).toBe(7);
    expect(concurrencyOf(cfg, "cleanup")).toBe(1);
  });

  it("binds each processor to exactly one queue", () => {
    const index = readFileSync(path.join(PROCESSORS, "index.ts"), "utf8");
    for (const file of stageFiles()) {
      const factory = factoryName(file);
      expect(index.match(new RegExp(`\\b${factory}\\(`, "g"))?.length ?? 0, factory).toBe(
        file === "heartbeat.ts" ? 0 : 1,
      );
    }
  });
});

describe("the stage contract", () => {
  it("the folder's README names every stage file", () => {
    const readme = readFileSync(path.join(PROCESSORS, "README.md"), "utf8");
    for (const file of stageFiles()) expect(readme, file).toContain(`\`${file}\``);
  });

  it("each processor file exports one stage factory and imports no other processor", async () => {
    for (const file of stageFiles()) {
      const mod = (await import(path.join(PROCESSORS, file))) as Record<string, unknown>;
      expect(Object.keys(mod), file).toEqual([factoryName(file)]);
      expect(typeof mod[factoryName(file)], file).toBe("function");
      const source = readFileSync(path.join(PROCESSORS, file), "utf8");
      const siblings = [...source.matchAll(/from "\.\/([^"]+)"/g)].map((m) => m[1]);
      expect(siblings, file).toEqual(siblings.length ? ["stage.js"] : []);
    }
  });
});

describe("queues without a processor", () => {
  it("say why they are off: the REDCap queues of a role when no REDCap is configured", async () => {
    const { captureLogger } = await import("../receiver/helpers.js");
    const { startWorkers } = await import("../../src/roles/workers.js");
    const { cleanup, testConfig } = await import("../support/env.js");
    const cfg = testConfig({});
    const { logger, lines } = captureLogger();
    const workers = await startWorkers(cfg, logger, ["redcap-push", "redcap-sync", "export"]);
    try {
      const off = lines.filter((l) => typeof l.reason === "string").map((l) => [l.queue, l.reason]);
      expect(off).toEqual(
        expect.arrayContaining([
          ["redcap-push", "REDCap not configured"],
          ["redcap-sync", "REDCap not configured"],
        ]),
      );
      expect(lines.some((l) => l.reason === "no processor")).toBe(false);
    } finally {
      await workers.close();
      await cleanup(cfg);
    }
  });
});

describe("the deployments", () => {
  const ROOT = path.resolve(import.meta.dirname, "../..");
  /** Queues per worker role, from the binding table. */
  const byRole = (role: Role) => ALL_QUEUES.filter((q) => ROLE_OF[q] === role).sort();
  const workerRoles: Role[] = ["worker-ingest", "worker-transfer", "worker-jobs"];

  it("pm2's ecosystem runs each worker role with exactly the queues the binding table gives it", async () => {
    const { createRequire } = await import("node:module");
    const eco = createRequire(import.meta.url)(path.join(ROOT, "ecosystem.config.cjs")) as {
      apps: Array<{ name: string; args: string }>;
    };
    for (const role of workerRoles) {
      const app = eco.apps.find((a) => a.name === `fiona-${role}`);
      expect(
        app?.args
          .match(/--queues (\S+)/)?.[1]
          ?.split(",")
          .sort(),
        role,
      ).toEqual(byRole(role));
    }
    expect(eco.apps.some((a) => a.args === "receiver")).toBe(true);
  });

  it("docker-compose runs each worker service with exactly the queues the binding table gives it", () => {
    const compose = readFileSync(path.join(ROOT, "docker-compose.yml"), "utf8");
    for (const role of workerRoles) {
      const service = compose.slice(
        compose.indexOf(`\n  ${role}:`),
        compose.indexOf("\n\n", compose.indexOf(`\n  ${role}:`)),
      );
      const queues = /"--queues",\s*"([^"]+)"/.exec(service)?.[1]?.split(",").sort();
      expect(queues, role).toEqual(byRole(role));
    }
    expect(compose).toContain('command: ["receiver"]');
  });

  it("binds every queue: a handler factory for each, the heartbeat worked by the receiver", () => {
    expect(Object.keys(STAGES).sort()).toEqual([...ALL_QUEUES].sort());
    expect(ROLE_OF.heartbeat).toBe("receiver");
  });
});

describe("job options", () => {
  it("come from one place: the defaults, with the configured attempts and backoff for sends", async () => {
    const { DEFAULT_JOB_OPTIONS, jobOptions } = await import("../../src/queues/index.js");
    const cfg = { transfer: { attempts: 3, backoffMs: 250, timeoutMs: 1000 } };
    expect(jobOptions("send", cfg)).toMatchObject({
      attempts: 3,
      backoff: { type: "exponential", delay: 250 },
    });
    expect(jobOptions("send", cfg).removeOnFail).toEqual(DEFAULT_JOB_OPTIONS.send.removeOnFail);
    expect(jobOptions("deidentify", cfg)).toBe(DEFAULT_JOB_OPTIONS.deidentify);
  });
});
