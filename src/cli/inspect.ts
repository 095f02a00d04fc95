import type { FionaConfig } from "../config/schema.js";
import { readJsonIfExists } from "../fs/atomic.js";
import { SitePaths } from "../paths.js";
import { connectProducer } from "../queues/connection.js";
import { getQueueCounts } from "../queues/counts.js";
import { StudyRegistry, type StudyEntry } from "../registry/studies.js";

async function withRedis<T>(
  cfg: FionaConfig,
  fn: (r: Awaited<ReturnType<typeof connectProducer>>) => Promise<T>,
) {
  const redis = await connectProducer(cfg.redis.url);
  try {
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

export async function printStatus(cfg: FionaConfig, json: boolean): Promise<void> {
  const counts = await withRedis(cfg, (r) => getQueueCounts(r, cfg.redis.prefix));
  if (json) return void console.log(JSON.stringify(counts, null, 2));
  const cols = ["waiting", "active", "delayed", "failed", "completed", "paused"] as const;
  console.log(["queue".padEnd(16), ...cols.map((c) => c.padStart(10))].join(""));
  for (const [queue, c] of Object.entries(counts)) {
    console.log([queue.padEnd(16), ...cols.map((k) => String(c[k] ?? 0).padStart(10))].join(""));
  }
}

interface PhiFields {
  PatientName?: string;
  PatientID?: string;
}

/** Patient name and ID come only from the series JSON on disk: the registry never holds them. */
async function readPhi(paths: SitePaths, s: StudyEntry): Promise<PhiFields> {
  const first = s.series[0];
  if (!first) return {};
  const j = await readJsonIfExists<PhiFields>(paths.seriesJson(s.studyInstanceUid, first.seriesInstanceUid));
  return { PatientName: j?.PatientName, PatientID: j?.PatientID };
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
    const who = showPhi ? ` ${(s as PhiFields).PatientName ?? ""} [${(s as PhiFields).PatientID ?? ""}]` : "";
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
