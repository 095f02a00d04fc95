import { rmSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { testConfig } from "../support/env.js";
import { startRole } from "./role-process.js";

const FAULT = path.resolve(import.meta.dirname, "fault.mjs");
const configs: FionaConfig[] = [];

afterAll(() => {
  for (const c of configs) rmSync(c.dataDir, { recursive: true, force: true });
});

describe.each([
  ["throw", "uncaught-exception", "injected exception"],
  ["reject", "unhandled-rejection", "injected rejection"],
])("a role process that dies of an error nobody handles (%s)", (fault, event, message) => {
  it("writes it as one JSON event and exits 1", async () => {
    const cfg = testConfig({ log: { level: "info" } });
    configs.push(cfg);
    const worker = startRole(cfg, ["worker", "--queues", "cleanup"], {
      nodeArgs: ["--import", FAULT],
      env: { FIONA_TEST_FAULT: fault },
    });
    await worker.waitForEvent((e) => e.msg === "workers started", "workers started");
    worker.child.kill("SIGUSR2");
    expect(await worker.exited).toBe(1);
    expect(worker.notJson()).toEqual([]);
    expect(worker.stderr.filter((l) => l.trim())).toEqual([]);
    const fatal = worker.events().filter((e) => e.level === 60);
    expect(fatal).toEqual([
      expect.objectContaining({ event, err: message, stack: expect.stringContaining("fault.mjs") }),
    ]);
    expect(worker.events().at(-1)).toEqual(fatal[0]);
  });
});

describe("a Node warning in a role process", () => {
  it("is a JSON event, not Node's stderr text, and the role carries on", async () => {
    const cfg = testConfig({ log: { level: "info" } });
    configs.push(cfg);
    const worker = startRole(cfg, ["worker", "--queues", "cleanup"], {
      nodeArgs: ["--import", FAULT],
      env: { FIONA_TEST_FAULT: "warn" },
    });
    await worker.waitForEvent((e) => e.msg === "workers started", "workers started");
    worker.child.kill("SIGUSR2");
    await worker.waitForEvent(
      (e) => e.event === "node-warning" && e.err === "injected warning",
      "node-warning",
    );
    expect(await worker.stop()).toBe(0);
    expect(worker.notJson()).toEqual([]);
  });
});
