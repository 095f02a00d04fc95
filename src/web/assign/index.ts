import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import express, { type NextFunction, type Request, type Response, type Router } from "express";

/**
 * The Assign page: static HTML, CSS and native ES modules (JavaScript type-checked by tsconfig.web.json,
 * never compiled) that talk to /api. TypeScript compiles only .ts files into dist/, so the files are
 * always served from the package's src/web/assign/static/; the relative URL below resolves to that
 * folder from src/web/assign/ and from dist/web/assign/ alike.
 */
export const ASSIGN_STATIC_DIR = fileURLToPath(new URL("../../../src/web/assign/static/", import.meta.url));

export const ASSIGN_PATH = "/assign";

/** Strict CSP: only this origin's own scripts, styles and fetches; no inline code, no framing. */
const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

export function assignPageRouter(dir = ASSIGN_STATIC_DIR): Router {
  if (!existsSync(dir)) throw new Error(`Assign page files not found at ${dir}`);
  const router = express.Router();
  router.use((_req: Request, res: Response, next: NextFunction) => {
    res.setHeader("Content-Security-Policy", PAGE_CSP);
    next();
  });
  router.use(
    express.static(dir, { index: "index.html", dotfiles: "ignore", etag: false, lastModified: false }),
  );
  return router;
}
