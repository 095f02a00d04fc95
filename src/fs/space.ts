/**
 * Free space of the data file system and its floor: max(minFreeBytes, minFreePercent of the file
 * system). The receiver stops taking images below it, so what comes after the archive (raw links,
 * series JSON, outbox) still has room. Both 0 turn the floor off.
 */
import fs from "node:fs";
import path from "node:path";

export interface SpaceFloor {
  minFreeBytes: number;
  minFreePercent: number;
}

export interface DiskSpace {
  totalBytes: number;
  /** Available to unprivileged processes (statfs bavail), as df shows it. */
  freeBytes: number;
  floorBytes: number;
  belowFloor: boolean;
}

export function floorEnabled(floor: SpaceFloor): boolean {
  return floor.minFreeBytes > 0 || floor.minFreePercent > 0;
}

function toDiskSpace(s: fs.StatsFs, floor: SpaceFloor): DiskSpace {
  const totalBytes = s.blocks * s.bsize;
  const freeBytes = s.bavail * s.bsize;
  const floorBytes = Math.max(floor.minFreeBytes, Math.ceil((totalBytes * floor.minFreePercent) / 100));
  return { totalBytes, freeBytes, floorBytes, belowFloor: floorEnabled(floor) && freeBytes < floorBytes };
}

/** Space of the file system `dir` is on (or will be created on: its nearest existing ancestor). */
export async function readDiskSpace(dir: string, floor: SpaceFloor): Promise<DiskSpace> {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    try {
      return toDiskSpace(await fs.promises.statfs(d), floor);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT" || d === path.dirname(d)) throw e;
    }
  }
}

/** statfs at most once a second, or once this much was written since the last one. */
const RECHECK_MS = 1000;
const RECHECK_BYTES = 64 * 1024 * 1024;

/**
 * The floor check on the receiver's hot path: one statfs per second (or per 64 MiB written), the
 * bytes written since then subtracted, so a check costs nothing per file and a burst between two
 * statfs calls is still seen.
 */
export class SpaceGuard {
  private space: DiskSpace | undefined;
  private readAt = -Infinity;
  private writtenSince = 0;
  /** Allocation unit of the file system: a file takes whole blocks. */
  private blockSize = 4096;

  constructor(
    private readonly dir: string,
    private readonly floor: SpaceFloor,
  ) {}

  /** True when `bytes` more can be written without going below the floor (or the floor is off). */
  admits(bytes: number): boolean {
    if (!floorEnabled(this.floor)) return true;
    const s = this.current();
    // statfs failed: no basis to refuse; the write itself reports a full disk.
    if (s === undefined) return true;
    return s.freeBytes - bytes >= s.floorBytes;
  }

  /** Count a file's bytes just written (until the next statfs sees them). */
  wrote(bytes: number): void {
    this.writtenSince += Math.ceil(bytes / this.blockSize) * this.blockSize;
  }

  /** The last reading, refreshed when stale, less what was written since. */
  current(): DiskSpace | undefined {
    const now = Date.now();
    if (now - this.readAt >= RECHECK_MS || this.writtenSince >= RECHECK_BYTES) {
      this.readAt = now;
      this.writtenSince = 0;
      try {
        const s = fs.statfsSync(this.dir);
        this.blockSize = s.bsize || this.blockSize;
        this.space = toDiskSpace(s, this.floor);
      } catch {
        this.space = undefined;
      }
    }
    if (this.space === undefined) return undefined;
    const freeBytes = Math.max(0, this.space.freeBytes - this.writtenSince);
    return { ...this.space, freeBytes, belowFloor: freeBytes < this.space.floorBytes };
  }
}
