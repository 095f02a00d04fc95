/** The API's answers for unknown paths and for errors: always `{ error }` JSON, never a stack. */
import type { NextFunction, Request, Response } from "express";
import type { Logger } from "../../log.js";
import type { SessionManager } from "../session.js";
import { HttpError } from "./http-error.js";

export function notFound(_req: Request, res: Response): void {
  res.status(404).json({ error: "not found" });
}

export function errorHandler(sessions: SessionManager, secureOf: (req: Request) => boolean, logger: Logger) {
  return (err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    if (err instanceof HttpError) {
      if (err.status === 401 && req.headers.cookie?.includes("fiona_session=")) {
        res.append("Set-Cookie", sessions.clearCookie(secureOf(req)));
      }
      res.status(err.status).json({ ...err.details, error: err.message });
      return;
    }
    const status =
      typeof err === "object" && err !== null && "status" in err && typeof err.status === "number"
        ? err.status
        : 500;
    if (status >= 400 && status < 500) {
      res.status(status).json({ error: status === 413 ? "request too large" : "bad request" });
      return;
    }
    logger.error(
      { err: err instanceof Error ? err.message : String(err), path: req.path },
      "web: api request failed",
    );
    res.status(500).json({ error: "internal error" });
  };
}
