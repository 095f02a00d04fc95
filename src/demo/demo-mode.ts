/**
 * `fiona start --demo`: a pipeline that can assign a study on the first day, with nothing else installed.
 * It adds a project DEMO whose research PACS is this FIONA's own receiver (called AE DEMOPACS): an
 * assigned study comes back pseudonymized and shows up in the incoming list as a new study, so the
 * whole path (receive, assign, pseudonymize, send) can be seen. Without a site secret it makes one
 * for this data directory (mode 0600); never use demo mode for real data.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { FionaConfig } from "../config/schema.js";
import { projectSchema } from "../config/schema.js";

export const DEMO_PROJECT = "DEMO";
export const DEMO_PACS_AE = "DEMOPACS";
const SECRET_FILE = "demo-secret";

export function withDemo(cfg: FionaConfig): FionaConfig {
  const projects = cfg.projects.some((p) => p.name === DEMO_PROJECT)
    ? cfg.projects
    : [
        ...cfg.projects,
        projectSchema.parse({
          name: DEMO_PROJECT,
          participantPattern: "DEMO_[0-9]{4}",
          events: ["baseline", "followup"],
          destination: { aeTitle: DEMO_PACS_AE, host: "127.0.0.1", port: cfg.dicomPort },
        }),
      ];
  return { ...cfg, projects, secret: cfg.secret ?? demoSecret(cfg.dataDir) };
}

function demoSecret(dataDir: string): string {
  const file = path.join(dataDir, SECRET_FILE);
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const secret = randomBytes(24).toString("hex");
    writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: "wx" });
    return secret;
  }
}
