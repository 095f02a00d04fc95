/** The data directory and the TLS files: what an operator must get right on disk. */
import { X509Certificate } from "node:crypto";
import { promises as fs, constants } from "node:fs";
import type { FionaConfig } from "../config/schema.js";
import { floorEnabled, readDiskSpace } from "../fs/space.js";
import { initialPasswordPath } from "../web/initial-admin.js";
import { readUsersFile, usersFilePath } from "../web/users-file.js";
import { fail, ok, warn, type CheckResult } from "./check.js";

/** Certificates expiring within this many days are reported. */
export const EXPIRY_WARNING_DAYS = 30;

/** dataDir holds patient data: it must exist, be writable, and be closed to other users. */
export async function checkDataDir(cfg: FionaConfig): Promise<CheckResult> {
  const name = "data directory";
  const dir = cfg.dataDir;
  const st = await fs.stat(dir).catch(() => undefined);
  if (!st?.isDirectory())
    return fail(name, `${dir} does not exist`, `create it, owned by the service user: mkdir -m 700 ${dir}`);
  const writable = await fs.access(dir, constants.W_OK).then(
    () => true,
    () => false,
  );
  if (!writable) return fail(name, `${dir} is not writable`, `chown it to the service user`);
  const mode = st.mode & 0o777;
  if (mode & 0o007)
    return fail(
      name,
      `${dir} is open to other users (mode ${mode.toString(8)}); it holds patient data`,
      `chmod o-rwx ${dir}`,
    );
  return ok(name, `${dir} (mode ${mode.toString(8)})`);
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;

/** Below the floor the receiver refuses images; within twice the floor it soon will. */
export async function checkFreeSpace(cfg: FionaConfig): Promise<CheckResult> {
  const name = "free space";
  if (!floorEnabled(cfg.disk))
    return warn(name, "no free-space floor configured", "set disk.minFreeBytes or disk.minFreePercent");
  const d = await readDiskSpace(cfg.dataDir, cfg.disk);
  const detail = `${gib(d.freeBytes)} free of ${gib(d.totalBytes)}, floor ${gib(d.floorBytes)}`;
  if (d.belowFloor)
    return fail(
      name,
      `${detail}: the receiver refuses C-STOREs`,
      "free space (fiona cleans transferred studies above schedules.archiveCleanup.maxDiskPercent) or add disk",
    );
  if (d.freeBytes < 2 * d.floorBytes)
    return warn(name, `${detail}: close to the floor`, "free space or add disk soon");
  return ok(name, detail);
}

/** Who may sign in: users of the config file and of the users file; the first admin's password changed. */
export async function checkUsers(cfg: FionaConfig): Promise<CheckResult> {
  const name = "users";
  let fileUsers;
  try {
    fileUsers = readUsersFile(usersFilePath(cfg.dataDir));
  } catch (e) {
    return fail(name, (e as Error).message, "fix the users file, or manage it with fiona user");
  }
  const count = cfg.web.users.length + fileUsers.length + (cfg.web.basicAuth ? 1 : 0);
  if (count === 0)
    return warn(
      name,
      "no users yet: the web role creates an administrator on its first start",
      "fiona user add <name> --role admin",
    );
  const initial = await fs.stat(initialPasswordPath(cfg.dataDir)).then(
    () => true,
    () => false,
  );
  if (initial)
    return warn(
      name,
      `${count} configured; the first administrator still has its generated password`,
      "fiona user passwd admin",
    );
  return ok(name, `${count} configured`);
}

export function checkSecret(cfg: FionaConfig): CheckResult {
  const name = "site secret";
  if (!cfg.secret)
    return fail(
      name,
      "no site secret: pseudonymized UIDs and date offsets cannot be made",
      "set `secret` in the configuration or FIONA_SECRET (keep it stable and private; back it up)",
    );
  return ok(name, "set");
}

/** Every certificate FIONA is configured with: the receiver's, each destination's client side, REDCap's CA. */
function certificateFiles(cfg: FionaConfig): Array<{ what: string; file: string }> {
  const out: Array<{ what: string; file: string }> = [];
  const rx = cfg.receiver.tls;
  if (rx) {
    out.push({ what: "receiver certificate", file: rx.cert });
    if (rx.ca) out.push({ what: "receiver client CA", file: rx.ca });
  }
  const peers = [
    ...(cfg.researchPacs ? [{ what: "researchPacs", peer: cfg.researchPacs }] : []),
    ...cfg.projects.flatMap((p) =>
      p.destination ? [{ what: `project ${p.name}`, peer: p.destination }] : [],
    ),
    ...cfg.noAssign.destinations.map((d) => ({ what: `noAssign ${d.name}`, peer: d })),
  ];
  for (const { what, peer } of peers) {
    if (peer.tls?.cert) out.push({ what: `${what} client certificate`, file: peer.tls.cert });
    if (peer.tls?.ca) out.push({ what: `${what} CA`, file: peer.tls.ca });
  }
  if (cfg.redcap?.ca) out.push({ what: "REDCap CA", file: cfg.redcap.ca });
  return out;
}

export async function checkCertificates(cfg: FionaConfig, now = Date.now()): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const { what, file } of certificateFiles(cfg)) {
    const name = `TLS ${what}`;
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(await fs.readFile(file));
    } catch (e) {
      results.push(
        fail(
          name,
          `${file}: ${(e as Error).message}`,
          "point the configuration at a readable PEM certificate",
        ),
      );
      continue;
    }
    const days = Math.floor((Date.parse(cert.validTo) - now) / 86_400_000);
    if (days < 0) results.push(fail(name, `${file} expired on ${cert.validTo}`, "renew the certificate"));
    else if (days < EXPIRY_WARNING_DAYS)
      results.push(warn(name, `${file} expires in ${days} days (${cert.validTo})`, "renew the certificate"));
    else results.push(ok(name, `${file}, valid until ${cert.validTo}`));
  }
  return results;
}
