import { promises as fs } from "node:fs";
import path from "node:path";
import { FlowProducer } from "bullmq";
import { deidSettings, type FionaConfig } from "../config/schema.js";
import { connectProducer } from "../queues/connection.js";
import { TransferRegistry, type TransferRecord } from "../registry/transfers.js";
import { liveStatus, type LiveStatus } from "../transfer/live-status.js";
import type { StageTimings } from "../transfer/stage-timings.js";
import { deidentifyFiles } from "../transfer/deid-files.js";
import { validateRequest } from "../transfer/request.js";
import os from "node:os";
import { AuditLog } from "../registry/audit.js";
import { assignStudy } from "../routing/assign.js";
import { withRouting } from "./routing-session.js";

export interface AssignOptions {
  project: string;
  participant: string;
  event?: string;
  by?: string;
  /** Confirms re-assigning a study already sent for the project as another participant. */
  replace?: boolean;
}

/**
 * `fiona assign`: request the transfer of an arrived study to a project, as the Assign page does
 * (auto-ID reservation, re-assignment check), audited with the operating-system user.
 */
export async function assign(cfg: FionaConfig, studyUid: string, o: AssignOptions): Promise<void> {
  const user = os.userInfo().username;
  await withRouting(cfg, async (routing) => {
    const request = {
      studyInstanceUid: studyUid,
      project: o.project,
      participant: o.participant,
      ...(o.event !== undefined ? { event: o.event } : {}),
      requestedBy: o.by ?? user,
    };
    const started = await assignStudy(routing, request, { replace: o.replace === true });
    await new AuditLog(routing.redis, cfg.redis.prefix).record({
      user,
      via: "cli",
      action: started.reassignedFrom ? "reassign" : "assign",
      study: studyUid,
      project: o.project,
      participant: o.participant,
      ...(o.event !== undefined ? { event: o.event } : {}),
      requestId: started.requestId,
      run: started.run,
      ...(started.reassignedFrom ? { detail: `from participant ${started.reassignedFrom.join(", ")}` } : {}),
    });
    console.log(
      `transfer ${started.requestId} run ${started.run}: ${started.series} series queued` +
        (started.reassignedFrom ? ` (re-assigned from ${started.reassignedFrom.join(", ")})` : ""),
    );
  });
}

/** `fiona transfers`: transfer requests with the state and reason the Assign page shows. */
export async function printTransfers(cfg: FionaConfig, json: boolean): Promise<void> {
  const redis = await connectProducer(cfg.redis);
  const flow = new FlowProducer({ connection: redis, prefix: cfg.redis.prefix });
  try {
    const list = await new TransferRegistry(redis, cfg.redis.prefix).list();
    const withLive = await Promise.all(list.map(async (t) => ({ ...t, live: await liveStatus(flow, t) })));
    if (json) return void console.log(JSON.stringify(withLive, null, 2));
    if (!list.length) return void console.log("no transfers");
    for (const t of withLive) console.log(transferLine(t));
  } finally {
    await flow.close();
    redis.disconnect();
  }
}

function transferLine(t: TransferRecord & { live: LiveStatus }): string {
  const who = `${t.project}/${t.participant}${t.event ? `/${t.event}` : ""}`;
  const reason = t.live.reason && !t.live.label.includes(t.live.reason) ? t.live.reason : undefined;
  const why = t.live.retrying ? `retrying: ${t.live.retrying}` : reason;
  return (
    `${t.requestId} ${t.live.label} ${who} study ${t.studyInstanceUid} -> ` +
    `${t.pseudoStudyInstanceUid ?? "(not yet)"} sent=${t.filesSent} failed=${t.filesFailed} ` +
    `dropped=${t.filesDropped} runs=${t.runs}${t.durationMs !== undefined ? ` ${t.durationMs} ms` : ""}` +
    (t.stages ? `\n    ${stagesText(t.stages)}` : "") +
    (why ? `\n    ${why}` : "")
  );
}

/** The latest run's stage timings: wall time per stage, busy time where jobs ran side by side. */
function stagesText(s: StageTimings): string {
  const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const jobs = (j: StageTimings["send"]) =>
    `${sec(j.spanMs)}${j.jobs > 1 ? ` (${j.jobs} jobs, ${sec(j.sumMs)} busy, longest ${sec(j.maxMs)})` : ""}`;
  return (
    `queue wait ${sec(s.queueWaitMs)}, de-identification ${jobs(s.deidentify)}, ` +
    `send ${jobs(s.send)}, bookkeeping ${sec(s.bookkeepingMs)}`
  );
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath ?? dir, e.name))
    .sort();
}

/** `fiona deid`: pseudonymize a file or a folder offline, with a project's settings. */
export async function deidOffline(
  cfg: FionaConfig,
  input: string,
  output: string,
  o: AssignOptions,
): Promise<void> {
  const project = validateRequest(
    {
      studyInstanceUid: "1.2",
      project: o.project,
      participant: o.participant,
      event: o.event,
      requestedBy: "cli",
    },
    cfg.projects,
  );
  if (!cfg.secret) throw new Error("no site secret configured (secret in the config file, or FIONA_SECRET)");
  const stat = await fs.stat(input);
  const files = stat.isDirectory() ? await listFiles(input) : [input];
  const r = deidentifyFiles({
    files,
    outDir: output,
    ctx: {
      project: deidSettings(project),
      participant: o.participant,
      ...(o.event !== undefined ? { event: o.event } : {}),
      secret: cfg.secret,
    },
  });
  console.log(
    `${r.written} of ${files.length} files written to ${output}` +
      (Object.keys(r.dropped).length ? `; dropped ${JSON.stringify(r.dropped)}` : "") +
      (r.refused.length
        ? `; refused ${r.refused.length} (${r.refused[0]!.file}: ${r.refused[0]!.reason})`
        : ""),
  );
  if (r.refused.length) process.exitCode = 1;
}
