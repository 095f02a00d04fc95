import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import pino from "pino";
import { loadConfig } from "../config/load.js";
import type { FionaConfig } from "../config/schema.js";
import { createLogger } from "../log.js";
import { registerCommands } from "./commands.js";

export interface GlobalOptions {
  config?: string;
}

export function configFrom(opts: GlobalOptions): FionaConfig {
  return loadConfig({ file: opts.config });
}

const program = new Command()
  .name("fiona")
  .description("FIONA research-imaging edge appliance: receive, classify, pseudonymize and forward DICOM")
  .addOption(
    new Option("-c, --config <file>", "configuration file (default: $FIONA_CONFIG or ./fiona.config.json)"),
  )
  .version(packageVersion(), "-V, --version", "print the version")
  .showHelpAfterError();

registerCommands(program);

/** The long-running roles: their output is a log, so a failure is one more JSON event in it. */
const ROLES = new Set(["start", "receiver", "worker", "web", "scheduler"]);
let running = "";
program.hook("preAction", (_program, action) => {
  running = action.name();
});

/** The version of the package this file belongs to (src/cli or dist/cli: two levels below it). */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  // Said once: as one JSON event in a role's log, in words for a command's user.
  if (ROLES.has(running))
    createLogger(undefined, "fiona", pino.destination({ dest: 1, sync: true })).fatal(
      { event: "role-failed", role: running, err: message },
      "role failed",
    );
  else console.error(`fiona: ${message}`);
  process.exit(1);
});
