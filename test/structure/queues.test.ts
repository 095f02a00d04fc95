import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ROLE_OF, STAGES, type Role } from "../../src/processors/index.js";
import { ALL_QUEUES } from "../../src/queues/index.js";

const README = readFileSync(path.resolve(import.meta.dirname, "../../README.md"), "utf8");

describe("the README's queue table", () => {
  it("lists every queue once, and no queue that does not exist", () => {
    const section = README.slice(
      README.indexOf("## Queues"),
      README.indexOf("\n## ", README.indexOf("## Queues") + 1),
    );
    const rows = [...section.matchAll(/^\| `([a-z-]+)` \|/gm)].map((m) => m[1]);
    expect([...rows].sort()).toEqual([...ALL_QUEUES].sort());
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
