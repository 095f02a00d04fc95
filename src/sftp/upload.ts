import { createHash } from "node:crypto";
import { createReadStream, promises as fs } from "node:fs";
import path from "node:path";
import SftpClient from "ssh2-sftp-client";
import type { SftpDestination } from "../export/config.js";

/** The server presented a host key other than the pinned one: never retried. */
export class HostKeyMismatchError extends Error {
  override name = "HostKeyMismatchError";
}

/** OpenSSH's fingerprint of a raw host key blob: "SHA256:" + unpadded base64 of its SHA-256. */
function hostKeyFingerprint(key: Buffer): string {
  return `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest("hex");
}

export interface UploadOptions {
  /** Name on the server (default: the local base name). */
  remoteName?: string;
  onProgress?: (sent: number, total: number) => void;
  /** Called after every failed attempt that will be retried. */
  onRetry?: (attempt: number, err: Error) => void;
  /** The file's SHA-256 (hex) when already known (exports record it); computed otherwise. */
  sha256?: string;
  /** Tests: wait between attempts (default setTimeout). */
  sleep?: (ms: number) => Promise<void>;
}

export interface UploadResult {
  remotePath: string;
  size: number;
  sha256: string;
  attempts: number;
}

const posix = path.posix;

/**
 * Upload one file: under a temporary name, renamed to its final name only once the remote size matches,
 * then a `<name>.sha256` sidecar (`sha256sum` format). A dropped connection restarts the upload from
 * scratch (the temporary file is overwritten), up to dest.attempts times with exponential backoff; the
 * final name only ever holds a complete file. A host key other than dest.hostKeySha256 fails at once.
 */
export async function uploadFile(
  dest: SftpDestination,
  localFile: string,
  opts: UploadOptions = {},
): Promise<UploadResult> {
  const { size } = await fs.stat(localFile);
  // Hashed while the first attempt uploads (both mostly wait on I/O).
  const hashing = opts.sha256 !== undefined ? Promise.resolve(opts.sha256) : sha256File(localFile);
  hashing.catch(() => {});
  const name = opts.remoteName ?? path.basename(localFile);
  if (name.includes("/") || name.startsWith(".")) throw new Error("remote name must be a plain file name");
  const finalPath = posix.join(dest.remoteDir, name);
  const tmpPath = posix.join(dest.remoteDir, `.${name}.part`);
  const privateKey = await fs.readFile(dest.keyPath);
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  for (let attempt = 1; ; attempt++) {
    const client = new SftpClient("fiona-sftp");
    let mismatch: string | undefined;
    try {
      await client.connect({
        host: dest.host,
        port: dest.port,
        username: dest.user,
        privateKey,
        readyTimeout: dest.readyTimeoutMs,
        retries: 0,
        hostVerifier: (key: Buffer) => {
          const fp = hostKeyFingerprint(key);
          if (fp === dest.hostKeySha256) return true;
          mismatch = fp;
          return false;
        },
      });
      await client.fastPut(localFile, tmpPath, {
        step: (sent: number, _chunk: number, total: number) => opts.onProgress?.(sent, total),
      });
      const st = await client.stat(tmpPath);
      if (st.size !== size) throw new Error(`remote size ${st.size} differs from local size ${size}`);
      await client.posixRename(tmpPath, finalPath);
      const sha256 = await hashing;
      await client.put(
        Buffer.from(`${sha256}  ${name}\n`),
        posix.join(dest.remoteDir, `.${name}.sha256.part`),
      );
      await client.posixRename(
        posix.join(dest.remoteDir, `.${name}.sha256.part`),
        posix.join(dest.remoteDir, `${name}.sha256`),
      );
      await client.end().catch(() => {});
      return { remotePath: finalPath, size, sha256: await hashing, attempts: attempt };
    } catch (e) {
      await client.end().catch(() => {});
      if (mismatch !== undefined)
        throw new HostKeyMismatchError(
          `host key of ${dest.host}:${dest.port} is ${mismatch}, not the configured ${dest.hostKeySha256}`,
        );
      const err = e instanceof Error ? e : new Error(String(e));
      if (attempt >= dest.attempts) throw err;
      opts.onRetry?.(attempt, err);
      await sleep(dest.retryDelayMs * 2 ** (attempt - 1));
    }
  }
}
