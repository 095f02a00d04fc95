import { format } from "node:util";
import type { Logger } from "../log.js";
import { logRedisErrorsTo } from "../queues/redis-errors.js";
import { RepeatLimiter } from "../util/repeat-limiter.js";

/**
 * A role's output is a log: every line on stdout and stderr must be one JSON event. Libraries
 * (BullMQ, ioredis) print to the console when they have no listener or want to warn, and Node
 * prints uncaught errors and warnings as plain text; this routes all of that into pino.
 */

const CONSOLE_METHODS = ["log", "info", "debug", "warn", "error"] as const;
type ConsoleMethod = (typeof CONSOLE_METHODS)[number];
const LEVEL: Record<ConsoleMethod, "info" | "debug" | "warn" | "error"> = {
  log: "info",
  info: "info",
  debug: "debug",
  warn: "warn",
  error: "error",
};
/** A library printing a whole object or buffer should not make one huge line. */
const MAX_CONSOLE_CHARS = 4000;

/** Console output becomes `event: "console"` lines, repeats counted per 10 s. */
export function routeConsoleToLog(log: Logger): void {
  const limiter = new RepeatLimiter<ConsoleMethod>({
    windowMs: 10_000,
    first: (text, method) => log[LEVEL[method]]({ event: "console", method }, text),
    repeated: (text, count, methods) =>
      log[LEVEL[methods[0] ?? "log"]]({ event: "console", count }, `repeated ${count} times: ${text}`),
  });
  for (const method of CONSOLE_METHODS) {
    console[method] = (...args: unknown[]) =>
      limiter.note(format(...args).slice(0, MAX_CONSOLE_CHARS), method);
  }
}

let fatalHandlersInstalled = false;

/**
 * An uncaught exception or unhandled rejection is logged as one fatal event, then the process
 * exits 1 as Node would have (the state is unknown; pm2, systemd or Docker restart it). pino's
 * default destination is flushed synchronously on exit, so the line is not lost.
 */
function logFatalErrors(log: Logger): void {
  if (fatalHandlersInstalled) return;
  fatalHandlersInstalled = true;
  const die = (event: string, msg: string, reason: unknown) => {
    const err = reason instanceof Error ? reason : undefined;
    log.fatal({ event, err: err ? err.message : String(reason), stack: err?.stack }, msg);
    process.exit(1);
  };
  process.on("uncaughtException", (err) => die("uncaught-exception", "uncaught exception", err));
  process.on("unhandledRejection", (reason) =>
    die("unhandled-rejection", "unhandled promise rejection", reason),
  );
}

/** Node's warnings (deprecations, MaxListenersExceeded) as JSON instead of its default stderr text. */
function logNodeWarnings(log: Logger): void {
  process.removeAllListeners("warning");
  process.on("warning", (w) =>
    log.warn({ event: "node-warning", name: w.name, err: w.message }, "Node warning"),
  );
}

/** Everything above, for a role process. */
export function installProcessLogging(log: Logger): void {
  logRedisErrorsTo(log);
  logFatalErrors(log);
  logNodeWarnings(log);
  routeConsoleToLog(log);
}
