import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import type { FionaConfig } from "../../src/config/schema.js";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");

/** `fiona <args>` from the build (dist/), against a config file with the same settings as `cfg`. */
export function fionaCli(cfg: FionaConfig): (...args: string[]) => Promise<string> {
  const configFile = path.join(cfg.dataDir, "cli.config.json");
  writeFileSync(configFile, JSON.stringify({ ...cfg, log: { level: "warn" } }));
  return async (...args) =>
    (await run(process.execPath, ["bin/fiona.js", "--config", configFile, ...args], { cwd: ROOT })).stdout;
}
