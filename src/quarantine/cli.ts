/** `fiona failures [--stage S] [--json]`, `fiona failures retry|dismiss <id>`: the stages' quarantine. */
import os from "node:os";
import type { Command } from "commander";
import type { FionaConfig } from "../config/schema.js";
import { connectProducer } from "../queues/connection.js";
import { ALL_QUEUES, type QueueName } from "../queues/index.js";
import { AuditLog } from "../registry/audit.js";
import { withRouting } from "../cli/routing-session.js";
import { actOnQuarantined } from "./actions.js";
import type { QuarantineRecord } from "./record.js";
import { QuarantineStore } from "./store.js";

export function registerFailuresCommands(program: Command, cfg: () => FionaConfig): void {
  const failures = program
    .command("failures")
    .description("what each stage refused or gave up on (its quarantine), newest first")
    .option("--stage <queue>", `only this stage (${ALL_QUEUES.join(", ")})`)
    .option("--json", "machine-readable output")
    .action(async (o: { stage?: string; json?: boolean }) => listFailures(cfg(), o));
  failures
    .command("retry")
    .description("run a quarantined object through its stage again")
    .argument("<id>")
    .action(async (id: string) => act(cfg(), "retry", id));
  failures
    .command("dismiss")
    .description("drop a quarantine record (the data stays where it is)")
    .argument("<id>")
    .action(async (id: string) => act(cfg(), "dismiss", id));
}

async function listFailures(cfg: FionaConfig, o: { stage?: string; json?: boolean }): Promise<void> {
  if (o.stage !== undefined && !ALL_QUEUES.includes(o.stage as QueueName))
    throw new Error(`unknown stage ${o.stage} (known: ${ALL_QUEUES.join(", ")})`);
  const redis = await connectProducer(cfg.redis);
  try {
    const store = new QuarantineStore(redis, cfg.redis.prefix);
    const list = await store.list(o.stage ? { stage: o.stage as QueueName } : {});
    if (o.json) return void console.log(JSON.stringify(list, null, 2));
    if (!list.length)
      return void console.log(o.stage ? `nothing quarantined by ${o.stage}` : "nothing quarantined");
    for (const r of list) console.log(describe(r));
  } finally {
    redis.disconnect();
  }
}

function describe(r: QuarantineRecord): string {
  const ids = Object.entries(r.ids)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(" ");
  const times = r.count > 1 ? ` (${r.count} times since ${r.firstAt})` : "";
  const files = r.files !== undefined ? ` files=${r.files}` : "";
  return `${r.id} ${r.lastAt} ${r.stage}${times}${files}\n    ${ids}\n    reason: ${r.reason}`;
}

async function act(cfg: FionaConfig, action: "retry" | "dismiss", id: string): Promise<void> {
  await withRouting(cfg, async (routing) => {
    const outcome = await actOnQuarantined(
      {
        ...routing,
        store: new QuarantineStore(routing.redis, cfg.redis.prefix),
        audit: new AuditLog(routing.redis, cfg.redis.prefix),
      },
      action,
      id,
      { user: os.userInfo().username, via: "cli" },
    );
    console.log(
      outcome.kind === "transfer"
        ? `transfer ${outcome.requestId} run ${outcome.run} queued`
        : outcome.kind === "job"
          ? `job ${outcome.jobId} of ${outcome.queue} queued again`
          : `record ${id} dismissed`,
    );
  });
}
