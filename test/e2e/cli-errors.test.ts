import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");
const run = promisify(execFile);

/** Run `fiona <args>` from the build; resolves with its exit code and both outputs. */
async function fiona(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, ["bin/fiona.js", ...args], { cwd: ROOT, env: { ...process.env } });
    return { code: 0, ...r };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe("the command line on the first day", () => {
  it("prints its version", async () => {
    const { version } = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
      version: string;
    };
    expect((await fiona("--version")).stdout.trim()).toBe(version);
  });

  it("says a command's error once, in words on stderr", async () => {
    const r = await fiona("failures", "--stage", "nope");
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^fiona: unknown stage nope/)]);
  });

  it("says a role's error once, as one JSON event in its log", async () => {
    const r = await fiona("worker", "--queues", "nope");
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("");
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      event: "role-failed",
      role: "worker",
      err: expect.stringMatching(/unknown queue/),
    });
  });
});
