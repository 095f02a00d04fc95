/**
 * `<dataDir>/users.json`: the web users managed with `fiona user …` (and the administrator created on
 * the first start), next to those of web.users in the configuration file. Password hashes only, never
 * a password. Written whole to a temporary file (mode 0600) and renamed over the old one, so readers
 * never see half a file and the file is readable by its owner, the service user, only.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  fchownSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import path from "node:path";
import { z } from "zod";
import { webUserName } from "../config/schema.js";
import { isPasswordHash } from "./password.js";
import { ROLES } from "./roles.js";

export const USERS_FILE = "users.json";

const fileUser = z
  .object({
    name: webUserName,
    passwordHash: z.string().refine(isPasswordHash, "not a password hash"),
    role: z.enum(ROLES),
    projects: z.array(z.string().min(1)).default([]),
  })
  .strict();

const usersFile = z
  .object({ users: z.array(fileUser) })
  .strict()
  .refine((f) => new Set(f.users.map((u) => u.name)).size === f.users.length, "duplicate user names");

export type FileUser = z.output<typeof fileUser>;

export function usersFilePath(dataDir: string): string {
  return path.join(dataDir, USERS_FILE);
}

/** The users of the file; none when it does not exist. Throws, naming the file, when it is invalid. */
export function readUsersFile(file: string): FileUser[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${file}: not JSON`);
  }
  const r = usersFile.safeParse(parsed);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`${file}: ${issue?.path.join(".") || "file"}: ${issue?.message ?? "invalid"}`);
  }
  return r.data.users;
}

/**
 * Replace the file with `users` (mode 0600, owned like the file it replaces or, for a new one, like
 * its folder, so `sudo fiona user …` leaves it readable by the service). `exclusive`: fail with EEXIST
 * when the file exists already.
 */
export function writeUsersFile(
  file: string,
  users: readonly FileUser[],
  opts: { exclusive?: boolean } = {},
): void {
  const text = `${JSON.stringify({ users }, null, 2)}\n`;
  if (opts.exclusive) {
    writeNew(file, text);
    return;
  }
  const owner = statOrUndefined(file) ?? statOrUndefined(path.dirname(file));
  const tmp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    writeNew(tmp, text, owner);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Create `file` (never overwriting one) with mode 0600 and `text`, flushed to disk. */
export function writeNew(file: string, text: string, owner?: { uid: number; gid: number }): void {
  const fd = openSync(file, "wx", 0o600);
  try {
    if (owner && (owner.uid !== process.getuid?.() || owner.gid !== process.getgid?.())) {
      try {
        fchownSync(fd, owner.uid, owner.gid);
      } catch {
        // Not root: the file stays ours, which is the service user's when it runs the command.
      }
    }
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function statOrUndefined(file: string) {
  try {
    return statSync(file);
  } catch {
    return undefined;
  }
}

/** Identity of the file's current version: it changed when this changed. */
export function fileVersion(file: string): string {
  const st = statOrUndefined(file);
  return st ? `${st.ino}:${st.size}:${st.mtimeMs}` : "absent";
}
