import { randomUUID } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import { withLogContext, type Logger } from "../log.js";

/** An incoming X-Request-Id is kept when it is short and plain; anything else gets a fresh one. */
const SANE_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** Probes and scrapes every few seconds: logged at debug level. */
const QUIET_PATHS = new Set(["/healthz", "/readyz", "/metrics"]);

/**
 * Give every request an id (echoed in X-Request-Id) that is on every log line written while it is
 * served, and log one line per request: method, path without the query (queries may carry search
 * text), status and duration.
 */
export function requestIds(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const incoming = req.get("x-request-id");
    const reqId = incoming && SANE_ID.test(incoming) ? incoming : randomUUID();
    res.setHeader("X-Request-Id", reqId);
    const started = process.hrtime.bigint();
    res.once("finish", () =>
      withLogContext({ reqId }, () =>
        logger[QUIET_PATHS.has(req.path) ? "debug" : "info"](
          {
            method: req.method,
            path: req.path,
            status: res.statusCode,
            ms: Number((process.hrtime.bigint() - started) / 1000n) / 1000,
          },
          "http request",
        ),
      ),
    );
    withLogContext({ reqId }, next);
  };
}
