/**
 * What the reconciler reads from disk: the archive's study folders, the files archived in one, and the
 * SOP instances raw/ links for that study (raw/<Study>/<Series>/<SOP>, made by ingest).
 */
import { statSync, type Dirent } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";
import { isPathSafeUid } from "../dicom/uid.js";
import type { SitePaths } from "../paths.js";

interface StudyFolder {
  /** Folder name, `scp_<StudyInstanceUID>`. */
  name: string;
  studyInstanceUid: string;
  dir: string;
  mtimeMs: number;
}

export interface ArchivedFile {
  /** Absolute path, as the receiver puts it into the ingest job. */
  path: string;
  sopInstanceUid: string;
}

const SCP_DIR = /^scp_(.+)$/;
const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * The archive's study folders, one stat each: synchronous (a thread-pool round trip per folder costs
 * several times the stat), with a turn of the event loop every 500.
 */
export async function* studyFolders(paths: SitePaths): AsyncGenerator<StudyFolder> {
  const names = await readdir(paths.archive).catch(() => [] as string[]);
  for (const [i, name] of names.entries()) {
    if (i % 500 === 499) await yieldToEventLoop();
    const uid = SCP_DIR.exec(name)?.[1];
    if (uid === undefined || !isPathSafeUid(uid)) continue;
    const dir = path.resolve(paths.archive, name);
    const st = statSync(dir, { throwIfNoEntry: false });
    if (st?.isDirectory()) yield { name, studyInstanceUid: uid, dir, mtimeMs: st.mtimeMs };
  }
}

/** `<MOD>.<SOPInstanceUID>` files of one study folder (the receiver's names). */
export async function archivedFiles(folder: StudyFolder): Promise<ArchivedFile[]> {
  const entries = await readdir(folder.dir, { withFileTypes: true }).catch(() => [] as Dirent[]);
  const out: ArchivedFile[] = [];
  for (const e of entries) {
    const dot = e.name.indexOf(".");
    const sop = e.name.slice(dot + 1);
    if (!e.isFile() || dot <= 0 || !isPathSafeUid(sop)) continue;
    out.push({ path: path.join(folder.dir, e.name), sopInstanceUid: sop });
  }
  return out;
}

/** When a file last changed (mtime or ctime: a replaced file is renamed into place); undefined: gone. */
export async function changedMs(file: string): Promise<number | undefined> {
  const st = await lstat(file).catch(() => undefined);
  return st && Math.max(st.mtimeMs, st.ctimeMs);
}

/** SOP instance UIDs linked under raw/<Study>/<Series>/ for any series. */
export async function linkedInstances(paths: SitePaths, studyInstanceUid: string): Promise<Set<string>> {
  const dir = paths.rawStudyDir(studyInstanceUid);
  const linked = new Set<string>();
  const series = await readdir(dir, { withFileTypes: true }).catch(() => [] as Dirent[]);
  for (const s of series.filter((e) => e.isDirectory())) {
    for (const name of await readdir(path.join(dir, s.name)).catch(() => [] as string[])) linked.add(name);
  }
  return linked;
}
