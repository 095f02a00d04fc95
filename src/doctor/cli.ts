/** `fiona doctor [--json]`: one line per thing an operator must get right, with the fix. */
import type { Command } from "commander";
import type { FionaConfig } from "../config/schema.js";
import type { CheckResult } from "./check.js";
import { checkCertificates, checkDataDir, checkFreeSpace, checkSecret, checkUsers } from "./files.js";
import { checkDestinations, checkRedcap } from "./network.js";
import { checkRedis } from "./redis.js";

export function registerDoctorCommand(program: Command, cfg: () => FionaConfig): void {
  program
    .command("doctor")
    .description(
      "check what an operator must get right (Redis, disk, secret, users, TLS, peers) and say how to fix it",
    )
    .option("--json", "machine-readable output")
    .action(async (o: { json?: boolean }) => doctor(cfg(), !!o.json));
}

export async function runChecks(cfg: FionaConfig): Promise<CheckResult[]> {
  const groups = await Promise.all([
    checkRedis(cfg),
    checkDataDir(cfg).then((r) => [r]),
    checkFreeSpace(cfg).then((r) => [r]),
    [checkSecret(cfg)],
    checkUsers(cfg).then((r) => [r]),
    checkCertificates(cfg),
    checkDestinations(cfg),
    checkRedcap(cfg),
  ]);
  return groups.flat();
}

async function doctor(cfg: FionaConfig, json: boolean): Promise<void> {
  const results = await runChecks(cfg);
  if (json) console.log(JSON.stringify(results, null, 2));
  else
    for (const r of results) {
      const mark = r.status === "ok" ? "ok  " : r.status === "warn" ? "warn" : "FAIL";
      console.log(`${mark} ${r.name}: ${r.detail}${r.fix ? `\n     fix: ${r.fix}` : ""}`);
    }
  if (results.some((r) => r.status === "fail")) process.exitCode = 1;
}
