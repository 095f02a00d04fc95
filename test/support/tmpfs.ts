/**
 * A real, small tmpfs for disk-space tests, and a filler file to set its free space exactly (tmpfs
 * counts 4 KiB pages, no reserve). Mounting needs root: `mounted` is false, with the reason, when the
 * kernel refuses, and the tests skip.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

export interface Tmpfs {
  dir: string;
  mounted: boolean;
  /** Why the mount was refused. */
  reason?: string;
  unmount(): void;
}

const PAGE = 4096;

export function mountTmpfs(tag: string, size = "40m"): Tmpfs {
  const dir = fs.mkdtempSync(`/tmp/fiona-diskfull-${tag}-`);
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "pipe" });
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    const reason = String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim();
    return { dir, mounted: false, reason, unmount: () => {} };
  }
  return {
    dir,
    mounted: true,
    unmount() {
      execFileSync("umount", ["-l", dir], { stdio: "pipe" });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function freeBytes(dir: string): number {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}

/** Grow or shrink `filler` until the file system has `target` bytes free (rounded to pages). */
export function setFree(filler: string, target: number): void {
  const want = Math.floor(target / PAGE) * PAGE;
  const have = freeBytes(path.dirname(filler));
  const size = fs.existsSync(filler) ? fs.statSync(filler).size : 0;
  if (have > want) append(filler, have - want);
  else if (have < want) fs.truncateSync(filler, Math.max(0, size - (want - have)));
}

/** Take every free page: writes until ENOSPC. */
export function fillUp(filler: string): void {
  append(filler, Number.MAX_SAFE_INTEGER);
}

function append(file: string, bytes: number): void {
  const fd = fs.openSync(file, "a");
  const chunk = Buffer.alloc(1024 * 1024, 0x55);
  try {
    let left = bytes;
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      try {
        left -= fs.writeSync(fd, chunk, 0, n);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOSPC") return;
        throw e;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}
