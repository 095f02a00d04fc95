import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sftpDestinationSchema, type SftpDestination } from "../../src/export/config.js";
import { HostKeyMismatchError, uploadFile } from "../../src/sftp/upload.js";
import { hasSshd, startSshd, type TestSshd } from "./sshd.js";

let sshd: TestSshd;
let local: string;
let big: Buffer;

const dest = (over: Partial<SftpDestination> = {}): SftpDestination =>
  sftpDestinationSchema.parse({
    host: "127.0.0.1",
    port: sshd.port,
    user: process.env.USER ?? "root",
    keyPath: sshd.userKey,
    remoteDir: sshd.remoteDir,
    hostKeySha256: sshd.hostFingerprint,
    retryDelayMs: 50,
    ...over,
  });

describe.skipIf(!hasSshd)("SFTP upload against OpenSSH", () => {
  beforeAll(async () => {
    sshd = await startSshd();
    local = mkdtempSync(path.join(tmpdir(), "fiona-sftp-local-"));
    big = randomBytes(48 * 1024 * 1024);
    writeFileSync(path.join(local, "big.zip"), big);
    writeFileSync(path.join(local, "small.zip"), "small archive");
  }, 30_000);
  afterAll(async () => {
    await sshd?.stop();
  });

  it("uploads under a temporary name, renames, verifies the size and writes a SHA-256 sidecar", async () => {
    const progress: number[] = [];
    const r = await uploadFile(dest(), path.join(local, "small.zip"), {
      remoteName: "P_0001.zip",
      onProgress: (sent) => progress.push(sent),
    });
    expect(r).toMatchObject({ remotePath: `${sshd.remoteDir}/P_0001.zip`, size: 13, attempts: 1 });
    expect(readFileSync(path.join(sshd.remoteDir, "P_0001.zip"), "utf8")).toBe("small archive");
    const sha = createHash("sha256").update("small archive").digest("hex");
    expect(readFileSync(path.join(sshd.remoteDir, "P_0001.zip.sha256"), "utf8")).toBe(`${sha}  P_0001.zip\n`);
    expect(progress.at(-1)).toBe(13);
    expect(readdirSync(sshd.remoteDir).filter((f) => f.startsWith("."))).toEqual([]);
  });

  it("refuses a server whose host key is not the pinned one, without retrying", async () => {
    let retries = 0;
    await expect(
      uploadFile(dest({ hostKeySha256: sshd.otherFingerprint }), path.join(local, "small.zip"), {
        remoteName: "refused.zip",
        onRetry: () => retries++,
      }),
    ).rejects.toBeInstanceOf(HostKeyMismatchError);
    expect(retries).toBe(0);
    expect(existsSync(path.join(sshd.remoteDir, "refused.zip"))).toBe(false);
  });

  it("restarts after a connection dropped mid-upload, never leaving a partial file under the final name", async () => {
    let dropped = 0;
    const seenAtRetry: string[][] = [];
    const r = await uploadFile(dest(), path.join(local, "big.zip"), {
      onProgress: (sent, total) => {
        if (dropped === 0 && sent > total / 4) dropped = sshd.dropSessions();
      },
      onRetry: () => seenAtRetry.push(readdirSync(sshd.remoteDir)),
    });
    expect(dropped).toBeGreaterThan(0);
    expect(r.attempts).toBeGreaterThanOrEqual(2);
    expect(seenAtRetry.length).toBeGreaterThanOrEqual(1);
    for (const names of seenAtRetry) expect(names).not.toContain("big.zip");
    const remote = readFileSync(path.join(sshd.remoteDir, "big.zip"));
    expect(remote.length).toBe(big.length);
    expect(createHash("sha256").update(remote).digest("hex")).toBe(r.sha256);
    expect(readFileSync(path.join(sshd.remoteDir, "big.zip.sha256"), "utf8")).toBe(`${r.sha256}  big.zip\n`);
    expect(readdirSync(sshd.remoteDir).filter((f) => f.startsWith("."))).toEqual([]);
  }, 60_000);
});
