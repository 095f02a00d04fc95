import { Command, Option } from "commander";
import { loadConfig, ConfigError } from "../config/load.js";
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
  .showHelpAfterError();

registerCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const log = createLogger();
  if (err instanceof ConfigError) {
    console.error(`fiona: ${err.message}`);
  } else {
    log.fatal({ err: err instanceof Error ? err.message : String(err) }, "command failed");
    console.error(`fiona: ${err instanceof Error ? err.message : String(err)}`);
  }
  process.exit(1);
});
