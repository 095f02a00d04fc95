import { promises as fs, symlinkSync } from "node:fs";
import path from "node:path";
import { tempName } from "./temp-name.js";

/**
 * Write a file so readers see the old or the new content, never a torn one (temp file, then rename).
 * The temp file's name carries this process, so a sweep removes it if the process dies mid-write.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = path.join(path.dirname(file), tempName(path.basename(file)));
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Create link -> target unless link already exists (first link wins, as in FIONA).
 * Returns true when this call created it. Safe under concurrent callers.
 */
export async function ensureSymlink(target: string, link: string): Promise<boolean> {
  try {
    // Synchronous: one cheap syscall, cheaper than a thread-pool round trip per image.
    symlinkSync(target, link);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      await fs.mkdir(path.dirname(link), { recursive: true });
      return ensureSymlink(target, link);
    }
    throw e;
  }
}

export async function readJsonIfExists<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, "utf8")) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}
