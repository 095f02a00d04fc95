/** `fiona inventory --project P [--json] [--refresh]`: the research PACS's studies and the reconciliation. */
import type { Command } from "commander";
import type { FionaConfig } from "../config/schema.js";
import { createLogger } from "../log.js";
import { SitePaths } from "../paths.js";
import { connectProducer } from "../queues/connection.js";
import { redcapToken } from "../redcap/client.js";
import { stageClient } from "../redcap/stage.js";
import { TransferRegistry } from "../registry/transfers.js";
import type { Reconciliation } from "./reconcile.js";
import { pushToWhatIsInIds7 } from "./redcap.js";
import { crawlAndStore, inventoryProjects, reconcileStored } from "./run.js";
import { InventoryStore, type ProjectInventory } from "./store.js";
import { inventoryView } from "./view.js";

export function registerInventoryCommands(program: Command, cfg: () => FionaConfig): void {
  program
    .command("inventory")
    .description("studies the research PACS holds for a project, and what differs from FIONA's transfers")
    .requiredOption("-p, --project <name>", "project (the PACS's InstitutionName)")
    .option("--json", "machine-readable output")
    .option("--show-phi", "include patient ID and name, accession number and referring physician")
    .option("--refresh", "crawl the research PACS now (and push to REDCap when configured) before printing")
    .action(async (o: { project: string; json?: boolean; showPhi?: boolean; refresh?: boolean }) =>
      inventoryCli(cfg(), o.project, { json: !!o.json, showPhi: !!o.showPhi, refresh: !!o.refresh }),
    );
}

async function inventoryCli(
  cfg: FionaConfig,
  project: string,
  o: { json: boolean; showPhi: boolean; refresh: boolean },
): Promise<void> {
  if (!inventoryProjects(cfg).includes(project))
    throw new Error(`project ${project} is not inventoried (projects / inventory.projects)`);
  const paths = new SitePaths(cfg.dataDir);
  const store = new InventoryStore(paths);
  if (o.refresh) {
    const redis = await connectProducer(cfg.redis);
    try {
      const deps = {
        cfg,
        paths,
        transfers: new TransferRegistry(redis, cfg.redis.prefix),
        // Logs go to stdout: keep them out of --json output, and to warnings otherwise.
        log: createLogger(o.json ? "silent" : "warn"),
      };
      const inv = await crawlAndStore(deps, project);
      if (cfg.redcap && redcapToken(cfg.redcap, cfg.inventory.redcap)) {
        // The shared call limit of the REDCap stages applies to this process too.
        const client = stageClient({
          cfg: { ...cfg, redcap: cfg.redcap },
          redis,
          log: deps.log,
          redcapQueues: [],
        });
        await pushToWhatIsInIds7(client(cfg.inventory.redcap), inv);
      }
      await reconcileStored(deps, project);
    } finally {
      redis.disconnect();
    }
  }
  const view = await inventoryView(store, project, o.showPhi);
  if (o.json) return void console.log(JSON.stringify(view, null, 2));
  if (!view.inventory) {
    console.log(`${project}: not crawled yet (fiona inventory --project ${project} --refresh)`);
    process.exitCode = 1;
    return;
  }
  printInventory(view.inventory, view.reconciliation);
}

function printInventory(inv: ProjectInventory, r: Reconciliation | undefined): void {
  console.log(
    `${inv.project}: ${inv.studies.length} studies in the research PACS, crawled ${inv.crawledAt} ` +
      `(${inv.queries} queries${inv.complete ? "" : `, INCOMPLETE: ${inv.incompleteBuckets.join(" ")}`})`,
  );
  for (const s of inv.studies)
    console.log(
      `  ${s.studyInstanceUid} ${s.studyDate ?? "-"} ${s.patientId ?? "-"} ${s.modalities ?? ""} ` +
        `series=${s.numberOfSeries ?? "?"} instances=${s.numberOfInstances ?? "?"} ${s.studyDescription ?? ""}`,
    );
  if (!r) return;
  console.log(`sent by FIONA but gone from the PACS: ${r.missingInPacs.length}`);
  for (const m of r.missingInPacs)
    console.log(`  ${m.studyInstanceUid} ${m.participant}${m.event ? `/${m.event}` : ""} sent ${m.sentAt}`);
  console.log(`in the PACS but never sent by FIONA: ${r.notSentByFiona.length}`);
  for (const s of r.notSentByFiona)
    console.log(`  ${s.studyInstanceUid} ${s.studyDate ?? "-"} ${s.patientId ?? "-"}`);
}
