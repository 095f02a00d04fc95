import type { FionaConfig } from "../config/schema.js";
import { readJsonIfExists } from "../fs/atomic.js";
import { SitePaths } from "../paths.js";
import { connectProducer } from "../queues/connection.js";
import { collectMetrics, type MetricsSnapshot } from "../metrics/collect.js";
import { STAGES } from "../processors/index.js";
import type { QueueName } from "../queues/index.js";
import { StudyRegistry, type StudyEntry } from "../registry/studies.js";

async function withRedis<T>(
  cfg: FionaConfig,
  fn: (r: Awaited<ReturnType<typeof connectProducer>>) => Promise<T>,
) {
  const redis = await connectProducer(cfg.redis);
  try {
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

/** The same picture as /metrics: queues, workers, job totals, receiver, disk and heartbeat. */
export async function printStatus(cfg: FionaConfig, json: boolean): Promise<void> {
  const m = await withRedis(cfg, (r) => collectMetrics(r, cfg));
  if (json) return void console.log(JSON.stringify(m, null, 2));
  const cols = ["waiting", "active", "delayed", "failed", "completed", "paused"] as const;
  const extra = ["workers", "done-total", "fail-total", "avg-ms", "quarantined"];
  console.log(
    ["queue".padEnd(16), "role".padEnd(16), ...[...cols, ...extra].map((c) => c.padStart(11))].join(""),
  );
  for (const [queue, c] of Object.entries(m.queues)) {
    const j = m.jobs[queue];
    const attempts = j ? j.buckets.reduce((a, b) => a + b, 0) : 0;
    const row = [
      ...cols.map((k) => c[k] ?? 0),
      m.workers[queue]?.workers ?? 0,
      j?.completed ?? 0,
      j?.failed ?? 0,
      attempts ? Math.round(j!.durationSumMs / attempts) : "-",
      m.quarantined[queue as QueueName] ?? 0,
    ];
    const role = STAGES[queue as QueueName]?.role ?? "";
    console.log([queue.padEnd(16), role.padEnd(16), ...row.map((v) => String(v).padStart(11))].join(""));
  }
  const rx = m.receiver;
  console.log(
    `\nreceived: ${rx.instancesStored} files, ${rx.bytesReceived} bytes, ${rx.instancesFailed} refused`,
  );
  console.log(
    `associations: ${rx.associationsActive} active, ${rx.associationsAccepted} accepted, ${rx.associationsRejected} rejected, ${rx.connectionsRefused} connections refused`,
  );
  console.log(`disk: ${m.disk ? diskLine(m.disk) : "unknown"}`);
  const hb = m.heartbeat;
  console.log(
    `heartbeat: ${hb ? `${hb.consecutiveFailures} consecutive failures (${hb.failuresTotal} in all), last ok ${hb.lastOk ?? "never"}, last failure ${hb.lastFailure ?? "never"}` : "no data"}`,
  );
}

function sizeText(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  for (; bytes >= 10 * 1024 && i < units.length - 1; i++) bytes /= 1024;
  return `${Math.round(bytes)} ${units[i]}`;
}

function diskLine(d: NonNullable<MetricsSnapshot["disk"]>): string {
  const floor = d.floorBytes > 0 ? `, floor ${sizeText(d.floorBytes)}` : ", no floor";
  const below = d.belowFloor ? " BELOW THE FLOOR: the receiver refuses C-STOREs" : "";
  return `${d.usedPercent.toFixed(1)}% used, ${sizeText(d.freeBytes)} free${floor} (${d.path})${below}`;
}

interface PhiFields {
  PatientName?: string;
  PatientID?: string;
  AccessionNumber?: string;
}

/** Patient name, ID and accession number come only from the series JSON on disk: the registry never holds them. */
async function readPhi(paths: SitePaths, s: StudyEntry): Promise<PhiFields> {
  const first = s.series[0];
  if (!first) return {};
  const j = await readJsonIfExists<PhiFields>(paths.seriesJson(s.studyInstanceUid, first.seriesInstanceUid));
  return { PatientName: j?.PatientName, PatientID: j?.PatientID, AccessionNumber: j?.AccessionNumber };
}

export async function printStudies(cfg: FionaConfig, json: boolean, showPhi: boolean): Promise<void> {
  const paths = new SitePaths(cfg.dataDir);
  const studies = await withRedis(cfg, (r) => new StudyRegistry(r, cfg.redis.prefix).list());
  const rows = await Promise.all(
    studies.map(async (s) => (showPhi ? { ...s, ...(await readPhi(paths, s)) } : s)),
  );
  if (json) return void console.log(JSON.stringify(rows, null, 2));
  if (!rows.length) return void console.log("no studies");
  for (const s of rows) {
    const phi = s as PhiFields;
    const who = showPhi
      ? ` ${phi.PatientName ?? ""} [${phi.PatientID ?? ""}]${phi.AccessionNumber ? ` acc ${phi.AccessionNumber}` : ""}`
      : "";
    console.log(
      `${s.studyInstanceUid}  ${s.studyDate ?? "-"} ${s.studyDescription ?? ""}  ${s.callingAe ?? "?"} -> ${s.calledAe ?? "?"}  ${s.status}${who}`,
    );
    for (const se of s.series) {
      console.log(
        `  ${String(se.seriesNumber ?? "").padStart(4)} ${se.modality ?? ""} ${se.seriesDescription ?? ""}  files=${se.numFiles}  [${se.classifyType.join(", ")}]`,
      );
    }
  }
}
