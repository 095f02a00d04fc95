/**
 * Names of FIONA's temporary files and folders: `.<base>.<host>-<pid>-<start>-<unique>.tmp`. They name
 * the process writing them, so a sweeper can tell a live writer's file from one a crash left behind
 * (src/cleanup/orphans.ts). `<start>` is that process's start time (clock ticks since boot, base 36,
 * from /proc; "0" where there is none): a pid reused after a restart, such as a container's pid 1,
 * is then not mistaken for the writer.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import os from "node:os";

export interface TempWriter {
  host: string;
  pid: number;
  start: string;
}

/** Start time of a process (field 22 of /proc/<pid>/stat), or undefined when it cannot be read. */
export function processStart(pid: number | "self"): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count from its closing one.
    const ticks = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    return ticks !== undefined && /^\d+$/.test(ticks) ? Number(ticks).toString(36) : undefined;
  } catch {
    return undefined;
  }
}

/** No dots in the host part, so a name parses from the right whatever its base holds. */
const host =
  os
    .hostname()
    .replace(/[^A-Za-z0-9-]/g, "_")
    .slice(0, 63) || "host";

/** This process as a writer of temporary files (worker threads share it). */
export const THIS_WRITER: TempWriter = { host, pid: process.pid, start: processStart("self") ?? "0" };

const tag = `${THIS_WRITER.host}-${THIS_WRITER.pid}-${THIS_WRITER.start}`;

/** A temporary name for `base` in the same folder; `unique` (letters and digits) defaults to random. */
export function tempName(base: string, unique = randomBytes(6).toString("hex")): string {
  return `.${base}.${tag}-${unique}.tmp`;
}

const TEMP_NAME = /\.([A-Za-z0-9_-]+)-(\d+)-([0-9a-z]+)-[0-9a-z]+\.tmp$/;

/** The writer a temporary name carries, or undefined for any other name. */
export function tempWriterOf(name: string): TempWriter | undefined {
  const m = TEMP_NAME.exec(name);
  return m ? { host: m[1]!, pid: Number(m[2]), start: m[3]! } : undefined;
}
