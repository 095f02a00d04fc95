/** A FIONA role as its own process (`node bin/fiona.js <role>` from dist/), with its output kept by line. */
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import type { FionaConfig } from "../../src/config/schema.js";
import { waitFor } from "../support/env.js";

const ROOT = path.resolve(import.meta.dirname, "../..");

export interface RoleProcess {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  /** The exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Lines of stdout that parse as JSON objects, parsed. */
  events(): Array<Record<string, unknown>>;
  /** Lines of stdout and stderr that are not one JSON object each. */
  notJson(): string[];
  waitForEvent(
    match: (e: Record<string, unknown>) => boolean,
    what: string,
    ms?: number,
  ): Promise<Record<string, unknown>>;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
}

const parse = (line: string): Record<string, unknown> | undefined => {
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === "object" && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
};

function collect(stream: NodeJS.ReadableStream, into: string[]): void {
  let rest = "";
  stream.on("data", (d: Buffer) => {
    const parts = (rest + d.toString("utf8")).split("\n");
    rest = parts.pop()!;
    into.push(...parts);
  });
  stream.on("end", () => {
    if (rest) into.push(rest);
  });
}

export interface RoleOptions {
  /** Node options before the script (e.g. --import of a fault injector). */
  nodeArgs?: string[];
  env?: Record<string, string>;
}

export function startRole(cfg: FionaConfig, args: string[], opts: RoleOptions = {}): RoleProcess {
  const name = args[0]!;
  const configFile = path.join(cfg.dataDir, `${name}.config.json`);
  writeFileSync(configFile, JSON.stringify(cfg));
  const child = spawn(
    process.execPath,
    [...(opts.nodeArgs ?? []), "bin/fiona.js", "--config", configFile, ...args],
    {
      cwd: ROOT,
      env: { ...process.env, FIONA_LOG_LEVEL: cfg.log.level, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const stdout: string[] = [];
  const stderr: string[] = [];
  collect(child.stdout!, stdout);
  collect(child.stderr!, stderr);
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const events = () => stdout.map(parse).filter((e) => e !== undefined);
  return {
    child,
    stdout,
    stderr,
    exited,
    events,
    notJson: () => [...stdout, ...stderr].filter((l) => l.trim() !== "" && parse(l) === undefined),
    waitForEvent: (match, what, ms = 20_000) =>
      waitFor(
        () => {
          if (child.exitCode !== null) throw new Error(`${name} exited: ${stderr.join("\n")}`);
          return events().find(match);
        },
        what,
        ms,
        50,
      ),
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}
