import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
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
  // The receiver role works its own heartbeat queue; every other queue belongs to exactly one worker role.
  const expected = [...ALL_QUEUES].filter((q) => q !== "heartbeat").sort();

  it("pm2's ecosystem runs every queue in exactly one worker role", async () => {
    const { createRequire } = await import("node:module");
    const eco = createRequire(import.meta.url)(path.join(ROOT, "ecosystem.config.cjs")) as {
      apps: Array<{ args: string }>;
    };
    const queues = eco.apps.flatMap((a) => /--queues (\S+)/.exec(a.args)?.[1]?.split(",") ?? []);
    expect(queues.sort()).toEqual(expected);
    expect(eco.apps.some((a) => a.args === "receiver")).toBe(true);
  });

  it("docker-compose runs every queue in exactly one worker service", () => {
    const compose = readFileSync(path.join(ROOT, "docker-compose.yml"), "utf8");
    const queues = [...compose.matchAll(/"--queues",\s*"([^"]+)"/g)].flatMap((m) => m[1]!.split(","));
    expect(queues.sort()).toEqual(expected);
    expect(compose).toContain('command: ["receiver"]');
  });
});
