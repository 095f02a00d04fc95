import type { FionaConfig } from "../config/schema.js";
import { SitePaths } from "../paths.js";
import { connectProducer } from "../queues/connection.js";
import { TransferRegistry } from "../registry/transfers.js";
import { uploadFile } from "../sftp/upload.js";
import { buildExport } from "./build.js";
import { exportRequest } from "./request.js";
import { ExportStore, LAYOUTS, type ExportLayout } from "./store.js";
import { auditCliAction } from "../cli/cli-audit.js";

export interface ExportCliOptions {
  project: string;
  participant: string;
  event?: string;
  layout?: string;
  noassign?: boolean;
  upload?: string;
  by?: string;
}

/**
 * `fiona export <StudyInstanceUID>`: build the archive here (the transfer's pseudonymized files when
 * the study was sent for this participant, else pseudonymized now), optionally upload it by SFTP.
 */
export async function exportCli(cfg: FionaConfig, studyUid: string, o: ExportCliOptions): Promise<void> {
  const layout = (o.layout ?? "DEFAULT").toUpperCase();
  if (!(LAYOUTS as readonly string[]).includes(layout))
    throw new Error(`unknown layout ${o.layout}; one of ${LAYOUTS.join(", ")}`);
  const dest = o.upload !== undefined ? cfg.exports.sftp[o.upload] : undefined;
  if (o.upload !== undefined && !dest) throw new Error(`no SFTP destination ${o.upload} in exports.sftp`);
  const redis = await connectProducer(cfg.redis);
  try {
    const paths = new SitePaths(cfg.dataDir);
    const store = new ExportStore(cfg);
    const req = await exportRequest(cfg, paths, new TransferRegistry(redis, cfg.redis.prefix), {
      studyInstanceUid: studyUid,
      project: o.project,
      participant: o.participant,
      ...(o.event !== undefined ? { event: o.event } : {}),
      layout: layout as ExportLayout,
      requestedBy: o.by ?? process.env.USER ?? "cli",
      noAssign: !!o.noassign,
    });
    const rec = await buildExport({ cfg, paths, store }, (await store.create(req)).id);
    console.log(
      `export ${rec.id}: ${store.zipPath(rec.id)} (${rec.size ?? 0} bytes, ${rec.manifest?.files.total ?? 0} files, from ${rec.source})`,
    );
    await auditCliAction(cfg, {
      action: o.noassign ? "noassign" : "export",
      study: studyUid,
      project: o.project,
      participant: o.participant,
      ...(o.event !== undefined ? { event: o.event } : {}),
      detail: `${rec.id} ${layout}${o.upload !== undefined ? ` upload ${o.upload}` : ""}`,
    });
    if (dest) {
      const r = await uploadFile(dest, store.zipPath(rec.id), {
        remoteName: rec.downloadName,
        ...(rec.sha256 ? { sha256: rec.sha256 } : {}),
      });
      console.log(`uploaded to ${o.upload}: ${r.remotePath} (sha256 ${r.sha256})`);
    }
  } finally {
    redis.disconnect();
  }
}
