import { readFileSync } from "node:fs";
import type { FionaConfig } from "../config/schema.js";

const MIN_TOKEN_CHARS = 32;

/** The bearer token /metrics accepts: web.metricsToken, or the first line of web.metricsTokenFile. */
export function metricsToken(web: FionaConfig["web"]): string | undefined {
  if (web.metricsToken) return web.metricsToken;
  if (!web.metricsTokenFile) return undefined;
  let text: string;
  try {
    text = readFileSync(web.metricsTokenFile, "utf8");
  } catch (e) {
    throw new Error(
      `web.metricsTokenFile: cannot read ${web.metricsTokenFile} (${(e as NodeJS.ErrnoException).code})`,
    );
  }
  const token = text.split(/\r?\n/)[0]!.trim();
  if (token.length < MIN_TOKEN_CHARS) {
    throw new Error(
      `web.metricsTokenFile: the token in ${web.metricsTokenFile} needs at least ${MIN_TOKEN_CHARS} characters`,
    );
  }
  return token;
}
