import { randomBytes } from "node:crypto";
import { fionaSimProjects } from "./fiona-projects.js";
import { startRedcapSimulator, type RedcapSimulator } from "./simulator.js";

/** A REDCap API token: 32 upper-case hex characters. */
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

/** A simulator with FIONA's REDCap projects (one per name in `perProject` too) and fresh tokens. */
export async function startFionaSim(
  o: { banThreshold?: number; perProject?: string[]; port?: number; host?: string } = {},
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
    ...(o.port !== undefined && { port: o.port }),
    ...(o.host !== undefined && { host: o.host }),
  });
  return { sim, tokens };
}
