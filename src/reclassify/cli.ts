/** `fiona reclassify <StudyInstanceUID> | --all-since <YYYY-MM-DD>`: queue reclassify jobs. */
import { existsSync } from "node:fs";
import type { Command } from "commander";
import type { FionaConfig } from "../config/schema.js";
import { isPathSafeUid } from "../dicom/uid.js";
import { SitePaths } from "../paths.js";
import { connectProducer } from "../queues/connection.js";
import { QUEUES, createQueue } from "../queues/index.js";
import { dayStartMs, studiesSince } from "./select.js";
import { auditCliAction } from "../cli/cli-audit.js";

export function registerReclassifyCommands(program: Command, cfg: () => FionaConfig): void {
  program
    .command("reclassify")
    .description("classify studies again with the current rules; routing re-runs where ClassifyType changed")
    .argument("[StudyInstanceUID]")
    .option("--all-since <date>", "every study in raw/ that received images on or after YYYY-MM-DD (UTC)")
    .action(async (uid: string | undefined, o: { allSince?: string }) =>
      reclassifyCli(cfg(), uid, o.allSince),
    );
}

async function reclassifyCli(cfg: FionaConfig, uid: string | undefined, allSince: string | undefined) {
  if ((uid === undefined) === (allSince === undefined))
    throw new Error("give a StudyInstanceUID or --all-since <YYYY-MM-DD>, not both");
  if (uid !== undefined && !isPathSafeUid(uid)) throw new Error("not a valid StudyInstanceUID");
  const paths = new SitePaths(cfg.dataDir);
  if (uid !== undefined && !existsSync(paths.rawStudyDir(uid))) throw new Error(`no study ${uid} in raw/`);
  const studies = uid !== undefined ? [uid] : await studiesSince(paths, dayStartMs(allSince!));
  const redis = await connectProducer(cfg.redis);
  const queue = createQueue(QUEUES.reclassify, redis, cfg.redis.prefix);
  try {
    await queue.addBulk(
      studies.map((studyInstanceUid) => ({ name: QUEUES.reclassify, data: { studyInstanceUid } })),
    );
    console.log(`${studies.length} reclassify job(s) queued`);
    await auditCliAction(cfg, {
      action: "reclassify",
      ...(uid !== undefined
        ? { study: uid }
        : { detail: `all since ${allSince}: ${studies.length} studies` }),
    });
  } finally {
    await queue.close();
    redis.disconnect();
  }
}
