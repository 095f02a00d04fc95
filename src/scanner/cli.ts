/** `fiona pull <StudyInstanceUID> [--scanner NAME] [--wait]`: pull a study from a scanner on demand. */
import { QueueEvents } from "bullmq";
import type { Command } from "commander";
import type { FionaConfig } from "../config/schema.js";
import { isPathSafeUid } from "../dicom/uid.js";
import { connectProducer, createRedis } from "../queues/connection.js";
import { QUEUES, createQueue } from "../queues/index.js";
import { reportRedisErrors } from "../queues/redis-errors.js";
import { enqueuePull } from "./enqueue.js";
import { auditCliAction } from "../cli/cli-audit.js";

export function registerPullCommand(program: Command, cfg: () => FionaConfig): void {
  program
    .command("pull")
    .description(
      "C-FIND the study's series on a scanner and C-MOVE what has not arrived (queue scanner-pull)",
    )
    .argument("<StudyInstanceUID>")
    .option("--scanner <name>", "scanners.list[].name (default: the only configured scanner)")
    .option("--wait", "wait until the pull is complete or gives up, and print the outcome")
    .action(async (uid: string, o: { scanner?: string; wait?: boolean }) => pullCli(cfg(), uid, o));
}

async function pullCli(cfg: FionaConfig, uid: string, o: { scanner?: string; wait?: boolean }) {
  if (!isPathSafeUid(uid)) throw new Error("not a valid StudyInstanceUID");
  const scanners = cfg.scanners.list;
  const scanner = o.scanner ?? (scanners.length === 1 ? scanners[0]!.name : undefined);
  if (scanner === undefined)
    throw new Error(
      scanners.length === 0
        ? "no scanner configured (scanners.list)"
        : `give --scanner (one of ${scanners.map((s) => s.name).join(", ")})`,
    );
  if (!scanners.some((s) => s.name === scanner)) throw new Error(`no scanner "${scanner}" in scanners.list`);

  const redis = await connectProducer(cfg.redis);
  const queue = createQueue(QUEUES.scannerPull, redis, cfg.redis.prefix);
  // QueueEvents blocks on its connection: a worker-style one of its own.
  const eventsRedis = o.wait ? createRedis(cfg.redis, "worker") : undefined;
  const events = eventsRedis
    ? new QueueEvents(QUEUES.scannerPull, { connection: eventsRedis, prefix: cfg.redis.prefix })
    : undefined;
  if (events) reportRedisErrors(events, `queue-events:${QUEUES.scannerPull}`);
  try {
    await events?.waitUntilReady();
    const jobId = await enqueuePull(queue, { studyInstanceUid: uid, scanner, trigger: "manual" });
    console.log(`scanner pull ${jobId} queued`);
    await auditCliAction(cfg, {
      action: "pull",
      study: uid,
      queue: QUEUES.scannerPull,
      jobId,
      detail: scanner,
    });
    if (!events) return;
    const job = (await queue.getJob(jobId))!;
    try {
      console.log(JSON.stringify(await job.waitUntilFinished(events)));
    } catch (e) {
      process.exitCode = 1;
      console.error(`scanner pull failed: ${(e as Error).message}`);
    }
  } finally {
    await events?.close();
    eventsRedis?.disconnect();
    await queue.close();
    redis.disconnect();
  }
}
