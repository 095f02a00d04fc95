/**
 * No anonymous administrator, ever: a web server without any user creates one on its first start, as
 * Jenkins and Grafana do. The administrator `admin` gets a random password, stored as a scrypt hash in
 * `<dataDir>/users.json`; the password itself goes to `<dataDir>/initial-admin-password` (mode 0600,
 * the service user's), whose path, never its content, is logged. `fiona user passwd admin` replaces it
 * and deletes that file.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import type { FionaConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import { isLoopbackHost } from "./listen-address.js";
import { hashPassword, verifyPassword } from "./password.js";
import { readUsersFile, usersFilePath, writeNew, writeUsersFile } from "./users-file.js";

export const INITIAL_ADMIN = "admin";
export const INITIAL_PASSWORD_FILE = "initial-admin-password";

export function initialPasswordPath(dataDir: string): string {
  return path.join(dataDir, INITIAL_PASSWORD_FILE);
}

/** Whether the configuration file itself names a user (web.users or the deprecated web.basicAuth). */
export function configHasUsers(cfg: FionaConfig): boolean {
  return cfg.web.users.length > 0 || cfg.web.basicAuth !== undefined;
}

/**
 * Before the web server listens on `host`: make sure some user exists. Creates the administrator when
 * there is none; refuses (throws) to do so for an address other machines can reach.
 */
export function ensureUsers(cfg: FionaConfig, host: string, logger: Logger): void {
  const file = usersFilePath(cfg.dataDir);
  if (configHasUsers(cfg) || readUsersFile(file).length > 0) return;
  if (!isLoopbackHost(host)) {
    throw new Error(
      `web: refusing to listen on ${host || "every address"} without any web user: ` +
        `create one first with "fiona user add <name> --role admin" (or configure web.users), ` +
        `or start once on 127.0.0.1 to create the initial administrator`,
    );
  }
  mkdirSync(cfg.dataDir, { recursive: true });
  const password = randomBytes(18).toString("base64url");
  const admin = {
    name: INITIAL_ADMIN,
    passwordHash: hashPassword(password),
    role: "admin" as const,
    projects: [],
  };
  try {
    writeUsersFile(file, [admin], { exclusive: !existsSync(file) });
  } catch (e) {
    // Another web process of this site created it a moment ago; its administrator stands.
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return;
    throw e;
  }
  const passwordFile = initialPasswordPath(cfg.dataDir);
  rmSync(passwordFile, { force: true });
  writeNew(passwordFile, `${password}\n`);
  logger.warn(
    { user: INITIAL_ADMIN, usersFile: file, passwordFile },
    `web: no users were configured: created the administrator "${INITIAL_ADMIN}"; its initial password ` +
      `is in ${passwordFile} (readable by this service user only); change it with fiona user passwd ${INITIAL_ADMIN}`,
  );
}

/** Delete the initial password file once it no longer opens the account whose old hash is given. */
export function dropInitialPassword(dataDir: string, oldHash: string): void {
  const file = initialPasswordPath(dataDir);
  let password: string;
  try {
    password = readFileSync(file, "utf8").replace(/\r?\n$/, "");
  } catch {
    return;
  }
  if (verifyPassword(password, oldHash)) rmSync(file, { force: true });
}
