/**
 * What ships is what src/ holds: no module in src/ loads the build output (dist/) or the development
 * code (dev/: the REDCap simulator), and `fiona dev redcap` runs the simulator from a checkout.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { freePort } from "../support/env.js";

const ROOT = path.resolve(import.meta.dirname, "../..");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sources(path.join(dir, e.name))
      : e.name.endsWith(".ts")
        ? [path.join(dir, e.name)]
        : [],
  );
}

describe("the build", () => {
  it("has no module in src/ that loads dist/ or imports dev/", () => {
    const offenders = sources(path.join(ROOT, "src")).filter((f) => {
      const text = readFileSync(f, "utf8");
      return (
        /(?:from\s+|import\(\s*|new URL\(\s*)["'](?:\.\.\/)+dist\//.test(text) ||
        /(?:from\s+|import\(\s*)["'](?:\.\.\/)+dev\//.test(text)
      );
    });
    expect(offenders.map((f) => path.relative(ROOT, f))).toEqual([]);
    // npm test builds first, into an emptied dist/
    expect(existsSync(path.join(ROOT, "dist", "cli", "main.js"))).toBe(true);
    expect(existsSync(path.join(ROOT, "dist", "redcap", "simulator.js"))).toBe(false);
  });

  it("runs the REDCap simulator with `fiona dev redcap` in a checkout", async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ["bin/fiona.js", "dev", "redcap", "--port", String(port)], {
      cwd: ROOT,
    });
    try {
      let out = "";
      const printed = await new Promise<{
        redcap: { url: string; projects: { incoming: { token: string } } };
      }>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          try {
            resolve(JSON.parse(out));
          } catch {
            // not complete yet
          }
        });
        child.once("exit", (code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      const body = new URLSearchParams({
        token: printed.redcap.projects.incoming.token,
        content: "metadata",
        format: "json",
      });
      const res = await fetch(printed.redcap.url, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: body.toString(),
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as Array<{ field_name: string }>).length).toBeGreaterThan(0);
    } finally {
      child.kill("SIGTERM");
    }
  });
});
