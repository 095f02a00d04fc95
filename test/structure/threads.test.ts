import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { generateStudy } from "../support/generate.js";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");
const checkout = mkdtempSync(path.join(tmpdir(), "fiona-no-dist-"));

afterAll(() => rmSync(checkout, { recursive: true, force: true }));

describe("worker threads", () => {
  it("start from the TypeScript sources in a checkout that has no dist/", async () => {
    cpSync(path.join(ROOT, "src"), path.join(checkout, "src"), { recursive: true });
    cpSync(path.join(ROOT, "package.json"), path.join(checkout, "package.json"));
    symlinkSync(path.join(ROOT, "node_modules"), path.join(checkout, "node_modules"));
    expect(existsSync(path.join(checkout, "dist"))).toBe(false);

    const study = generateStudy({ outDir: path.join(checkout, "in"), seed: "threads", fileSize: 2048 });
    const out = path.join(checkout, "out");
    writeFileSync(
      path.join(checkout, "probe.ts"),
      `
import { deidSettings, projectSchema } from "./src/config/schema.ts";
import { createLogger } from "./src/log.ts";
import { DeidPool } from "./src/transfer/deid-pool.ts";
const pool = new DeidPool(createLogger("silent"), 1);
const r = await pool.run({
  files: ${JSON.stringify(study.files)},
  outDir: ${JSON.stringify(out)},
  ctx: { project: deidSettings(projectSchema.parse({ name: "P" })), participant: "P1", secret: "s".repeat(32) },
});
await pool.close();
console.log(JSON.stringify({ written: r.written, refused: r.refused.length }));
`,
    );
    const { stdout } = await run(process.execPath, ["--import", "tsx", "probe.ts"], { cwd: checkout });
    expect(JSON.parse(stdout.trim().split("\n").at(-1)!)).toEqual({ written: 1, refused: 0 });
    expect(readdirSync(out)).toHaveLength(1);
    expect(existsSync(path.join(checkout, "dist"))).toBe(false);
  }, 60_000);
});
