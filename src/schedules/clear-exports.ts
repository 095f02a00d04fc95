import { promises as fs } from "node:fs";
import path from "node:path";
import type { FionaConfig } from "../config/schema.js";
import { ExportStore, exportsDir, exportsTempDir } from "../export/store.js";
import type { Logger } from "../log.js";

export interface ClearResult {
  tempRemoved: string[];
  exportsRemoved: string[];
  usedPercent: number;
}

export interface ClearOptions {
  now?: number;
  /** Disk usage in percent of the exports folder's file system (default: fs.statfs). */
  usage?: (dir: string) => Promise<number>;
}

export async function diskUsedPercent(dir: string): Promise<number> {
  const s = await fs.statfs(dir);
  const total = s.blocks * s.bsize;
  if (total === 0) return 0;
  // As df: used / (used + available to unprivileged users).
  const used = (s.blocks - s.bfree) * s.bsize;
  const avail = s.bavail * s.bsize;
  return (100 * used) / (used + avail || total);
}

/**
 * Delete build folders (exports/.tmp/<id>) and half-written archives (*.part) older than
 * exports.tempMaxAgeHours, then the oldest
 * archives while the exports disk is fuller than exports.maxDiskPercent. Exports being built are kept.
 */
export async function clearExports(
  cfg: FionaConfig,
  log?: Logger,
  opts: ClearOptions = {},
): Promise<ClearResult> {
  const now = opts.now ?? Date.now();
  const usage = opts.usage ?? diskUsedPercent;
  const result: ClearResult = { tempRemoved: [], exportsRemoved: [], usedPercent: 0 };
  const tmp = exportsTempDir(cfg);
  const maxAge = cfg.exports.tempMaxAgeHours * 3600_000;
  for (const name of await fs.readdir(tmp).catch(() => [] as string[])) {
    const p = path.join(tmp, name);
    const st = await fs.stat(p).catch(() => undefined);
    if (st && now - st.mtimeMs > maxAge) {
      await fs.rm(p, { recursive: true, force: true });
      result.tempRemoved.push(name);
    }
  }
  const dir = exportsDir(cfg);
  await fs.mkdir(dir, { recursive: true });
  // Archives a crashed build left half-written.
  for (const name of (await fs.readdir(dir)).filter((n) => n.endsWith(".part"))) {
    const st = await fs.stat(path.join(dir, name)).catch(() => undefined);
    if (st && now - st.mtimeMs > maxAge) {
      await fs.rm(path.join(dir, name), { force: true });
      result.tempRemoved.push(name);
    }
  }
  const store = new ExportStore(cfg);
  const oldestFirst = (await store.list())
    .filter((r) => r.status === "done" || r.status === "failed")
    .reverse();
  result.usedPercent = await usage(dir);
  while (result.usedPercent > cfg.exports.maxDiskPercent) {
    const victim = oldestFirst.shift();
    if (!victim) break;
    await store.remove(victim.id);
    result.exportsRemoved.push(victim.id);
    result.usedPercent = await usage(dir);
  }
  if (result.tempRemoved.length || result.exportsRemoved.length)
    log?.info(
      {
        temp: result.tempRemoved.length,
        exports: result.exportsRemoved.length,
        usedPercent: result.usedPercent,
      },
      "clearExports removed old exports",
    );
  return result;
}

export const CLEAR_EXPORTS_SCHEDULER = "clear-exports";
