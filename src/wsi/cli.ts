/** `fiona attach <file> --project P --participant S [--event E] [--meta key=value…] [--wait]`. */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { Command } from "commander";
import type { Redis } from "ioredis";
import type { FionaConfig } from "../config/schema.js";
import { connectProducer } from "../queues/connection.js";
import { DEFAULT_JOB_OPTIONS, QUEUES, createQueue } from "../queues/index.js";
import { validateRequest } from "../transfer/request.js";
import { parseMetaOptions } from "./metadata.js";
import { slideExtension, uploadStore, type UploadRecord } from "./uploads.js";
import { auditCliAction } from "../cli/cli-audit.js";

export interface AttachOptions {
  project: string;
  participant: string;
  event?: string;
  meta?: string[];
  wait?: boolean;
}

export function registerAttachCommand(program: Command, cfg: () => FionaConfig): void {
  program
    .command("attach")
    .description("upload a whole-slide image (SVS/TIFF), convert it to DICOM WSM and send it (queue wsi)")
    .argument("<file>")
    .requiredOption("--project <name>", "project the slide belongs to")
    .requiredOption("--participant <id>", "participant pseudonym (must match the project's pattern)")
    .option("--event <name>", "project event")
    .option(
      "--meta <key=value>",
      "pathology field, repeatable (specimen, block, slideId, slideNr, stain, biopsyNr, biopsyId, department; patho_* aliases)",
      (v: string, all: string[] = []) => [...all, v],
    )
    .option("--wait", "wait until the slide is sent or failed, and print the outcome")
    .action(async (file: string, o: AttachOptions) => attachCli(cfg(), file, o));
}

/** Copy the file into the upload store (streamed) and queue its conversion; returns the upload. */
export async function attachFile(cfg: FionaConfig, file: string, o: AttachOptions): Promise<UploadRecord> {
  validateAttachTarget(cfg, o, "cli");
  const metadata = parseMetaOptions(o.meta ?? []);
  const extension = slideExtension(file);
  const { size } = await stat(file);
  const store = uploadStore(cfg);
  const created = await store.create({
    project: o.project,
    participant: o.participant,
    ...(o.event !== undefined ? { event: o.event } : {}),
    metadata,
    extension,
    size,
  });
  const record = await store.append(created.id, 0, createReadStream(file));
  const redis = await connectProducer(cfg.redis);
  try {
    await queueConversion(cfg, redis, record.id);
  } finally {
    redis.disconnect();
  }
  return record;
}

/** Check project, participant and event of a slide as for a transfer request (InvalidRequestError). */
export function validateAttachTarget(
  cfg: FionaConfig,
  o: Pick<AttachOptions, "project" | "participant" | "event">,
  requestedBy: string,
): void {
  validateRequest(
    {
      studyInstanceUid: "1.2",
      project: o.project,
      participant: o.participant,
      ...(o.event !== undefined ? { event: o.event } : {}),
      requestedBy,
    },
    cfg.projects,
  );
}

/** Queue the conversion of a complete upload (job id = upload id, so a repeat adds nothing). */
export async function queueConversion(cfg: FionaConfig, redis: Redis, uploadId: string): Promise<void> {
  const queue = createQueue(QUEUES.wsi, redis, cfg.redis.prefix);
  try {
    await queue.add(QUEUES.wsi, { uploadId }, { ...DEFAULT_JOB_OPTIONS.wsi, jobId: uploadId });
  } finally {
    await queue.close();
  }
}

/** Poll the upload until it is sent or failed (or its conversion job failed without settling it). */
export async function waitForUpload(cfg: FionaConfig, id: string, pollMs = 500): Promise<UploadRecord> {
  const store = uploadStore(cfg);
  const redis = await connectProducer(cfg.redis);
  const queue = createQueue(QUEUES.wsi, redis, cfg.redis.prefix);
  try {
    for (;;) {
      const record = await store.get(id);
      if (!record) throw new Error(`upload ${id} disappeared`);
      if (record.state === "sent" || record.state === "failed") return record;
      // A job in "failed" has no retries left (retries wait in "delayed").
      const job = await queue.getJob(id);
      if (job && (await job.getState()) === "failed")
        return { ...record, state: "failed", error: job.failedReason };
      await sleep(pollMs);
    }
  } finally {
    await queue.close();
    redis.disconnect();
  }
}

async function attachCli(cfg: FionaConfig, file: string, o: AttachOptions): Promise<void> {
  const record = await attachFile(cfg, file, o);
  console.log(`upload ${record.id} (${record.size} bytes) queued for conversion`);
  await auditCliAction(cfg, {
    action: "attach",
    project: o.project,
    participant: o.participant,
    ...(o.event !== undefined ? { event: o.event } : {}),
    detail: `upload ${record.id}`,
  });
  if (!o.wait) return;
  const done = await waitForUpload(cfg, record.id);
  if (done.state === "sent") console.log(`upload ${done.id} sent (transfer ${done.requestId ?? "?"})`);
  else {
    process.exitCode = 1;
    console.error(`upload ${done.id} failed: ${done.error ?? "unknown error"}`);
  }
}
