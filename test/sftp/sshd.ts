import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort, waitFor } from "../support/env.js";

const SSHD = "/usr/sbin/sshd";
export const hasSshd = existsSync(SSHD) && existsSync("/usr/bin/ssh-keygen");

export interface TestSshd {
  port: number;
  dir: string;
  /** Folder the tests upload to. */
  remoteDir: string;
  userKey: string;
  hostFingerprint: string;
  /** Fingerprint of a key the server does not have. */
  otherFingerprint: string;
  /** Kill the per-connection sshd processes (drops every open session; the listener stays). */
  dropSessions(): number;
  stop(): Promise<void>;
}

const keygen = (file: string) => execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", file]);
const fingerprint = (pub: string) =>
  /SHA256:[A-Za-z0-9+/]+/.exec(
    execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", pub], { encoding: "utf8" }),
  )![0];

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}

/** An OpenSSH sshd on a loopback port with its own host and user keys (internal-sftp). */
export async function startSshd(): Promise<TestSshd> {
  const dir = mkdtempSync(path.join(tmpdir(), "fiona-sshd-"));
  const remoteDir = path.join(dir, "upload");
  mkdirSync(remoteDir);
  mkdirSync("/run/sshd", { recursive: true });
  keygen(path.join(dir, "host"));
  keygen(path.join(dir, "other"));
  keygen(path.join(dir, "user"));
  writeFileSync(path.join(dir, "authorized_keys"), readFileSync(path.join(dir, "user.pub")));
  const port = await freePort();
  const conf = path.join(dir, "sshd_config");
  writeFileSync(
    conf,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${path.join(dir, "host")}`,
      `PidFile ${path.join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
      "StrictModes no",
      "UsePAM no",
      "PermitRootLogin yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "Subsystem sftp internal-sftp",
      "",
    ].join("\n"),
  );
  const proc: ChildProcess = spawn(SSHD, ["-D", "-e", "-f", conf], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  await waitFor(
    () =>
      new Promise<boolean | undefined>((resolve) => {
        if (proc.exitCode !== null) throw new Error(`sshd exited: ${stderr}`);
        const s = createConnection({ port, host: "127.0.0.1" }, () => {
          s.destroy();
          resolve(true);
        });
        s.on("error", () => resolve(undefined));
      }),
    "sshd to listen",
  );
  return {
    port,
    dir,
    remoteDir,
    userKey: path.join(dir, "user"),
    hostFingerprint: fingerprint(path.join(dir, "host.pub")),
    otherFingerprint: fingerprint(path.join(dir, "other.pub")),
    dropSessions() {
      const kids = childrenOf(proc.pid!);
      for (const k of kids) process.kill(k, "SIGKILL");
      return kids.length;
    },
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        await exited;
      }
    },
  };
}
