/**
 * One folder's temporary entries (src/fs/temp-name.ts), removed when their writer is gone: on this
 * host a writer is gone when its pid no longer runs, or runs a process started at another time (a
 * reused pid); another host's processes cannot be asked, so their entries (and unnamed ones, from
 * before names carried the writer) go once unchanged for the grace period. Synchronous: the receiver
 * runs it before it takes associations; the schedule runs it one folder at a time.
 */
import fs from "node:fs";
import path from "node:path";
import { THIS_WRITER, processStart, tempWriterOf, type TempWriter } from "../fs/temp-name.js";

export interface TempSweepOptions {
  /** Every entry of the folder is temporary (archive/.tmp, exports/.tmp); else only `*.tmp` names are. */
  tempOnly: boolean;
  /** How long an entry of another host, or without a writer in its name, must be unchanged. */
  graceMs: number;
  now: number;
  /** Count what would go, remove nothing. */
  dryRun?: boolean;
}

export interface TempSweepCounts {
  removed: number;
  bytes: number;
  /** Entries kept because their writer may still be at work. */
  kept: number;
}

export const emptyCounts = (): TempSweepCounts => ({ removed: 0, bytes: 0, kept: 0 });

function pidGone(w: TempWriter): boolean {
  if (w.pid === THIS_WRITER.pid) return w.start !== THIS_WRITER.start;
  try {
    process.kill(w.pid, 0);
  } catch (e) {
    // EPERM: it runs, as another user.
    if ((e as NodeJS.ErrnoException).code === "ESRCH") return true;
  }
  const start = processStart(w.pid);
  return w.start !== "0" && start !== undefined && start !== w.start;
}

/** Size and last change (mtime or ctime: a new hard link changes only the ctime) of a file or tree. */
function entryInfo(p: string, st: fs.Stats): { bytes: number; changedMs: number } {
  const info = { bytes: st.isFile() ? st.size : 0, changedMs: Math.max(st.mtimeMs, st.ctimeMs) };
  if (!st.isDirectory()) return info;
  for (const name of fs.readdirSync(p)) {
    const child = fs.lstatSync(path.join(p, name), { throwIfNoEntry: false });
    if (!child) continue;
    const c = entryInfo(path.join(p, name), child);
    info.bytes += c.bytes;
    info.changedMs = Math.max(info.changedMs, c.changedMs);
  }
  return info;
}

/**
 * Sweep one folder, adding to `counts`; returns how many temporary entries are left in it (kept, or
 * only counted in a dry run). A folder that does not exist has nothing to sweep.
 */
export function sweepTempDir(dir: string, opts: TempSweepOptions, counts: TempSweepCounts): number {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return 0;
  }
  let left = 0;
  for (const name of names) {
    const writer = tempWriterOf(name);
    // Not the bare ".tmp": that is the exports folder's temporary folder itself.
    if (writer === undefined && !opts.tempOnly && !(name.endsWith(".tmp") && name !== ".tmp")) continue;
    const p = path.join(dir, name);
    try {
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      const local = writer !== undefined && writer.host === THIS_WRITER.host;
      const info = local ? undefined : entryInfo(p, st);
      const gone = local ? pidGone(writer) : opts.now - info!.changedMs > opts.graceMs;
      if (!gone || opts.dryRun) {
        if (gone) counts.removed++;
        else counts.kept++;
        left++;
        continue;
      }
      counts.bytes += (info ?? entryInfo(p, st)).bytes;
      fs.rmSync(p, { recursive: true, force: true });
      counts.removed++;
    } catch {
      // renamed or removed by its writer meanwhile
    }
  }
  return left;
}
