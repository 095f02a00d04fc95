import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { analysisSchema } from "../../src/analysis/config.js";
import { buildInvocation, jobFolder, runInvocation } from "../../src/analysis/runtime.js";

const folder = jobFolder("/srv/fiona/site/analysis/seg/42-0");

function jobOf(input: Record<string, unknown>) {
  return analysisSchema.parse({ runtime: "docker", jobs: [{ name: "seg", ...input }] }).jobs[0]!;
}

describe("container command lines", () => {
  const job = jobOf({
    image: "registry.example/seg:1.2",
    command: ["/app/run.sh", "{input}", "{output}", "{descr}", "--json", "{output_json}"],
    limits: { memory: "4g", cpus: 2, timeoutSeconds: 600 },
    env: { MODEL: "large" },
    options: { threshold: 0.5 },
  });

  for (const engine of ["docker", "podman"] as const) {
    it(`${engine}: read-only input, writable output, no network, limits, --rm, a name`, () => {
      const inv = buildInvocation(engine, job, folder, "42-0", {
        baseEnv: { PATH: "/usr/bin", FIONA_SECRET: "x" },
      });
      expect(inv.argv).toEqual([
        engine,
        "run",
        "--rm",
        "--name",
        "fiona-seg-42-0",
        "--network",
        "none",
        "--memory",
        "4g",
        "--cpus",
        "2",
        "--env",
        "FIONA_DESCR=/data/descr.json",
        "--env",
        "FIONA_INPUT=/data/input",
        "--env",
        'FIONA_JOB_OPTIONS={"threshold":0.5}',
        "--env",
        "FIONA_OUTPUT=/data/output",
        "--env",
        "FIONA_OUTPUT_JSON=/data/output/output.json",
        "--env",
        "MODEL=large",
        "--env",
        'ROR_CONT_OPTIONS={"threshold":0.5}',
        "--volume",
        "/srv/fiona/site/analysis/seg/42-0/input:/data/input:ro",
        "--volume",
        "/srv/fiona/site/analysis/seg/42-0/descr.json:/data/descr.json:ro",
        "--volume",
        "/srv/fiona/site/analysis/seg/42-0/output:/data/output:rw",
        "registry.example/seg:1.2",
        "/app/run.sh",
        "/data/input",
        "/data/output",
        "/data/descr.json",
        "--json",
        "/data/output/output.json",
      ]);
      expect(inv.killArgv).toEqual([engine, "kill", "fiona-seg-42-0"]);
      // Site secrets never reach the engine's environment.
      expect(inv.env).toEqual({ PATH: "/usr/bin" });
    });
  }

  it("network allowed and no limits: no --network, --memory or --cpus; engine binary configurable", () => {
    const open = jobOf({ image: "x:1", network: true });
    const inv = buildInvocation("podman", open, folder, "7-1", {
      engineBinary: "/usr/local/bin/podman",
      baseEnv: {},
    });
    expect(inv.argv.slice(0, 5)).toEqual(["/usr/local/bin/podman", "run", "--rm", "--name", "fiona-seg-7-1"]);
    expect(inv.argv).not.toContain("--network");
    expect(inv.argv).not.toContain("--memory");
    expect(inv.argv).not.toContain("--cpus");
    expect(inv.argv.at(-1)).toBe("x:1");
  });

  it("process runtime: host paths in placeholders and environment", () => {
    const job2 = analysisSchema.parse({
      runtime: "process",
      jobs: [{ name: "local", command: ["node", "algo.mjs", "{input}", "{output}", "{descr}", "{job}"] }],
    }).jobs[0]!;
    const inv = buildInvocation("process", job2, folder, "1-0", {
      baseEnv: { FIONA_REDCAP_TOKEN_INCOMING: "T" },
    });
    expect(inv.argv).toEqual(["node", "algo.mjs", folder.input, folder.output, folder.descr, folder.dir]);
    expect(inv.cwd).toBe(folder.dir);
    expect(inv.env).toMatchObject({
      FIONA_INPUT: folder.input,
      FIONA_OUTPUT: folder.output,
      FIONA_DESCR: folder.descr,
      FIONA_JOB_DIR: folder.dir,
    });
    expect(inv.env.FIONA_REDCAP_TOKEN_INCOMING).toBeUndefined();
  });

  it("configuration is checked: images for containers, commands for process, unique names", () => {
    expect(() => analysisSchema.parse({ jobs: [{ name: "a" }] })).toThrow(/needs an image/);
    expect(() => analysisSchema.parse({ runtime: "process", jobs: [{ name: "a" }] })).toThrow(
      /needs a command/,
    );
    expect(() =>
      analysisSchema.parse({
        jobs: [
          { name: "a", image: "x" },
          { name: "a", image: "y" },
        ],
      }),
    ).toThrow(/duplicate analysis job a/);
    expect(() =>
      analysisSchema.parse({ jobs: [{ name: "a", image: "x", limits: { memory: "lots" } }] }),
    ).toThrow();
  });
});

describe("running", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "fiona-rt-"));

  it("streams stdout and stderr line by line", async () => {
    const lines: string[] = [];
    const r = await runInvocation(
      {
        argv: ["sh", "-c", "echo one; echo two >&2; printf three"],
        env: { PATH: process.env.PATH ?? "" },
        cwd: dir,
      },
      { timeoutMs: 10_000, onLine: (s, l) => lines.push(`${s}:${l}`), logDir: path.join(dir, "log") },
    );
    expect(r).toMatchObject({ exitCode: 0, timedOut: false, cancelled: false });
    expect(lines.sort()).toEqual(["stderr:two", "stdout:one", "stdout:three"]);
  });

  it("kills the whole process tree at the time limit", async () => {
    const marker = `fiona-rt-${process.pid}-${Date.now()}`;
    const t0 = Date.now();
    const r = await runInvocation(
      {
        argv: ["sh", "-c", `sleep 30 & exec -a ${marker} sleep 31`],
        env: { PATH: process.env.PATH ?? "" },
        cwd: dir,
      },
      { timeoutMs: 300, killGraceMs: 500 },
    );
    expect(r.timedOut).toBe(true);
    expect(Date.now() - t0).toBeLessThan(5000);
    await new Promise((res) => setTimeout(res, 200));
    const ps = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" });
    expect(ps).not.toContain(marker);
  });

  it("stops on an abort signal", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const r = await runInvocation(
      { argv: ["sleep", "30"], env: { PATH: process.env.PATH ?? "" }, cwd: dir },
      { timeoutMs: 60_000, signal: ac.signal },
    );
    expect(r).toMatchObject({ cancelled: true, timedOut: false });
  });
});
