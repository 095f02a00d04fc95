/** The peers FIONA talks to: every DICOM destination by C-ECHO, every REDCap token by one API call. */
import type { FionaConfig } from "../config/schema.js";
import { peerLabel, scuDestination } from "../dimse/connect.js";
import { cEcho } from "../dimse/echo.js";
import { clientFor, redcapToken } from "../redcap/client.js";
import { fail, ok, type CheckResult } from "./check.js";

const ECHO_TIMEOUT_MS = 5000;

/** Each distinct destination once, named by who uses it. */
function destinations(cfg: FionaConfig) {
  const peers = [
    ...(cfg.researchPacs ? [{ who: "researchPacs", peer: cfg.researchPacs }] : []),
    ...cfg.projects.flatMap((p) =>
      p.destination ? [{ who: `project ${p.name}`, peer: p.destination }] : [],
    ),
    ...cfg.noAssign.destinations.map((d) => ({ who: `noAssign ${d.name}`, peer: d })),
  ];
  const seen = new Map<string, { who: string[]; dest: ReturnType<typeof scuDestination> }>();
  for (const { who, peer } of peers) {
    const dest = scuDestination(peer, cfg.aeTitle);
    const key = `${peerLabel(dest)} ${dest.callingAe} ${dest.tls ? "tls" : ""}`;
    const entry = seen.get(key) ?? { who: [], dest };
    entry.who.push(who);
    seen.set(key, entry);
  }
  return [...seen.values()];
}

export async function checkDestinations(cfg: FionaConfig): Promise<CheckResult[]> {
  return Promise.all(
    destinations(cfg).map(async ({ who, dest }) => {
      const name = `C-ECHO ${peerLabel(dest)}`;
      try {
        await cEcho(dest, ECHO_TIMEOUT_MS);
        return ok(name, `answers (${who.join(", ")})`);
      } catch (e) {
        return fail(
          name,
          `${(e as Error).message} (${who.join(", ")})`,
          `check host, port and AE titles with the PACS team; FIONA calls as ${dest.callingAe}`,
        );
      }
    }),
  );
}

/** The REDCap projects whose token is configured (here or in the environment). */
function redcapProjects(cfg: NonNullable<FionaConfig["redcap"]>): string[] {
  const fixed = ["incoming", "routing", "coupling", "dataTransferProjects", "autoId"];
  const perProject = Object.keys(cfg.projects.perProject).map((p) => `project:${p}`);
  return [...fixed, ...perProject].filter((name) => redcapToken(cfg, name) !== undefined);
}

export async function checkRedcap(cfg: FionaConfig): Promise<CheckResult[]> {
  const redcap = cfg.redcap;
  if (!redcap) return [];
  return Promise.all(
    redcapProjects(redcap).map(async (project) => {
      const name = `REDCap ${project}`;
      try {
        // The data dictionary: any valid project token may read it, and it changes nothing.
        const fields = await clientFor(redcap, project).call({ content: "metadata" }, (b) =>
          Array.isArray(b) ? b.length : 0,
        );
        return ok(name, `token accepted (${fields} fields)`);
      } catch (e) {
        return fail(
          name,
          (e as Error).message,
          `check redcap.url and the project's API token (never logged)`,
        );
      }
    }),
  );
}
