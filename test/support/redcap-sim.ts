import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { pino, type Logger } from "pino";
import { fionaSimProjects } from "../../dev/redcap/fiona-projects.js";
import { startRedcapSimulator, type RedcapSimulator } from "../../dev/redcap/simulator.js";

export const newToken = () => randomBytes(16).toString("hex").toUpperCase();

export interface FionaSim {
  sim: RedcapSimulator;
  tokens: {
    incoming: string;
    routing: string;
    coupling: string;
    dataTransferProjects: string;
    autoId: string;
    perProject: Record<string, string>;
  };
}

/** A simulator with FIONA's REDCap projects and fresh tokens. */
export async function startFionaSim(
  o: { banThreshold?: number; perProject?: string[] } = {},
): Promise<FionaSim> {
  const tokens = {
    incoming: newToken(),
    routing: newToken(),
    coupling: newToken(),
    dataTransferProjects: newToken(),
    autoId: newToken(),
    perProject: Object.fromEntries((o.perProject ?? []).map((p) => [p, newToken()])),
  };
  const sim = await startRedcapSimulator({
    projects: fionaSimProjects(tokens),
    banThreshold: o.banThreshold ?? 600,
  });
  return { sim, tokens };
}

/** A logger whose output is kept in memory (to assert what was, and was not, logged). */
export function capturedLogger(): { log: Logger; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c.toString());
      cb();
    },
  });
  return { log: pino({ level: "debug" }, stream), text: () => chunks.join("") };
}
