/**
 * The orphan sweep: temporary files and folders whose writer is gone (src/cleanup/temp-dir.ts), in
 * every place FIONA writes them, and slide uploads abandoned half-way. The small folders (archive/.tmp,
 * the exports folder and its .tmp, the inventory folder) are read every pass; the big trees
 * (raw/<Study>/, outbox/<request>/<series>/, the upload store) incrementally (src/cleanup/passes.ts),
 * folders with a live writer's file read again until it is gone. Outbox folders themselves are not
 * touched: exports read a finished transfer's outbox, and a slide's is its only converted copy;
 * they go with their study (archive cleanup).
 */
import { statSync, type Dirent } from "node:fs";
import { readdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import type { Redis } from "ioredis";
import type { FionaConfig } from "../config/schema.js";
import { exportsDir, exportsTempDir } from "../export/store.js";
import { InventoryStore } from "../inventory/store.js";
import type { Logger } from "../log.js";
import type { SitePaths } from "../paths.js";
import { uploadStore, type UploadStore } from "../wsi/uploads.js";
import { BUSY, IncrementalPasses, exclusive, type Pass } from "./passes.js";
import { emptyCounts, sweepTempDir, type TempSweepCounts, type TempSweepOptions } from "./temp-dir.js";

interface OrphanSweepDeps {
  cfg: FionaConfig;
  paths: SitePaths;
  redis: Redis;
  log: Logger;
  /** Stops a pass between folders (process shutdown); a stopped pass records nothing. */
  signal?: AbortSignal;
}

export interface OrphanSweepResult extends TempSweepCounts {
  full: boolean;
  dryRun: boolean;
  /** Folders read. */
  folders: number;
  /** Slide uploads without a byte for wsi.incompleteUploadHours, marked failed and their part removed. */
  staleUploads: number;
  ms: number;
}

const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

async function subdirs(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => [] as Dirent[]);
  return entries.filter((e) => e.isDirectory() && !e.name.startsWith(".")).map((e) => path.join(dir, e.name));
}

/**
 * Folders `depth` levels under root, with their mtime: stat'ed synchronously (a thread-pool round
 * trip per folder costs several times the stat), with a turn of the event loop every 500.
 */
async function* leafDirs(root: string, depth: number): AsyncGenerator<{ dir: string; mtimeMs: number }> {
  let level = [root];
  for (let d = 1; d < depth; d++) level = (await Promise.all(level.map(subdirs))).flat();
  let n = 0;
  for (const parent of level) {
    for (const dir of await subdirs(parent)) {
      if (++n % 500 === 0) await yieldToEventLoop();
      const st = statSync(dir, { throwIfNoEntry: false });
      if (st) yield { dir, mtimeMs: st.mtimeMs };
    }
  }
}

/** A `receiving` upload whose part file has not grown for the configured hours: failed, part removed. */
async function abandonStaleUpload(store: UploadStore, id: string, maxIdleMs: number, now: number) {
  const part = await stat(store.partPath(id)).catch(() => undefined);
  if (!part || now - part.mtimeMs <= maxIdleMs) return false;
  const record = await store.get(id);
  if (record?.state !== "receiving") return false;
  await rm(store.partPath(id), { force: true });
  record.state = "failed";
  record.error = `upload abandoned: no bytes for ${Math.round(maxIdleMs / 3600_000)} h`;
  await store.save(record);
  return true;
}

async function pass(
  deps: OrphanSweepDeps,
  full: boolean,
  dryRun: boolean,
): Promise<OrphanSweepResult | undefined> {
  const { cfg, paths } = deps;
  const o = cfg.schedules.orphans;
  const passes = new IncrementalPasses(
    deps.redis,
    `${cfg.redis.prefix}:cleanup:orphans`,
    o.fullPassHours * 3600_000,
  );
  const p: Pass = await passes.begin({ full });
  const counts = emptyCounts();
  const sweep = (dir: string, tempOnly: boolean): number => {
    const opts: TempSweepOptions = { tempOnly, graceMs: o.graceMinutes * 60_000, now: Date.now(), dryRun };
    return sweepTempDir(dir, opts, counts);
  };
  let folders = 0;
  for (const [dir, tempOnly] of [
    [path.join(paths.archive, ".tmp"), true],
    [exportsTempDir(cfg), true],
    [exportsDir(cfg), false],
    [new InventoryStore(paths).dir, false],
  ] as const) {
    sweep(dir, tempOnly);
    folders++;
  }
  const uploads = uploadStore(cfg);
  const recheck: string[] = [];
  for (const [root, depth] of [
    [paths.raw, 1],
    [paths.outbox, 2],
    [uploads.root, 1],
  ] as const) {
    for await (const { dir, mtimeMs } of leafDirs(root, depth)) {
      if (deps.signal?.aborted) return undefined;
      if (!passes.reads(p, dir, mtimeMs)) continue;
      folders++;
      if (sweep(dir, false) > 0) recheck.push(dir);
    }
  }
  let staleUploads = 0;
  if (!dryRun) {
    const maxIdleMs = cfg.wsi.incompleteUploadHours * 3600_000;
    for (const dir of await subdirs(uploads.root)) {
      const id = path.basename(dir);
      if (/^[0-9a-f]{32}$/.test(id) && (await abandonStaleUpload(uploads, id, maxIdleMs, Date.now())))
        staleUploads++;
    }
  }
  await passes.commit(p, recheck);
  return { full: p.full, dryRun, folders, ...counts, staleUploads, ms: Date.now() - p.startedAt };
}

/**
 * One sweep, one at a time across processes (BUSY when another one holds on for longer than
 * `waitMs`); logs one `orphans` event with its counts. Undefined when stopped by deps.signal.
 */
export async function sweepOrphans(
  deps: OrphanSweepDeps,
  opts: { full?: boolean; dryRun?: boolean; waitMs?: number } = {},
): Promise<OrphanSweepResult | typeof BUSY | undefined> {
  const key = `${deps.cfg.redis.prefix}:cleanup:orphans`;
  const r = await exclusive(deps.redis, key, { waitMs: opts.waitMs ?? 30_000, signal: deps.signal }, () =>
    pass(deps, !!opts.full, !!opts.dryRun),
  );
  if (r === BUSY) deps.log.info({ event: "orphans", ...BUSY }, "orphan sweep skipped");
  else if (r) deps.log.info({ event: "orphans", ...r }, "orphaned temporary files swept");
  return r;
}
