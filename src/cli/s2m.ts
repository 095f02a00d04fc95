import { spawn } from "node:child_process";
import { promises as fs } from "node:fs";
import path from "node:path";
import { SingleBar, Presets } from "cli-progress";
import type { FionaConfig } from "../config/schema.js";
import { isPathSafeUid } from "../dicom/uid.js";
import { SitePaths } from "../paths.js";

export interface S2mOptions {
  host: string;
  port?: number;
  callingAe: string;
}

async function countFiles(dir: string): Promise<number> {
  let n = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n++;
  return n;
}

/**
 * Send a folder (or an archived study) back through the receiver, as FIONA's s2m.sh does, using dcmtk's
 * storescu so the bytes go out unchanged. Exits non-zero when any file was refused.
 */
export async function s2m(cfg: FionaConfig, target: string, o: S2mOptions): Promise<void> {
  const dir = isPathSafeUid(target)
    ? new SitePaths(cfg.dataDir).archiveStudyDir(target)
    : path.resolve(target);
  const stat = await fs.stat(dir).catch(() => undefined);
  if (!stat?.isDirectory()) throw new Error(`${target}: no such folder or archived study`);
  const total = await countFiles(dir);
  const bar = new SingleBar(
    { format: "s2m [{bar}] {value}/{total} files", stream: process.stderr },
    Presets.legacy,
  );
  bar.start(total, 0);
  const args = [
    "-v",
    "-nh",
    "+sd",
    "+r",
    "-aet",
    o.callingAe,
    "-aec",
    cfg.aeTitle,
    o.host,
    String(o.port ?? cfg.dicomPort),
    dir,
  ];
  const child = spawn("storescu", args, {
    env: { ...process.env, TCP_NODELAY: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let sent = 0;
  let failed = 0;
  let carry = "";
  const onData = (chunk: Buffer) => {
    const lines = (carry + chunk.toString("utf8")).split("\n");
    carry = lines.pop() ?? "";
    for (const line of lines) {
      if (line.includes("Received Store Response")) {
        sent++;
        if (!line.includes("(Success)") && !line.includes("Warning")) failed++;
        bar.update(sent);
      }
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const code = await new Promise<number>((resolve, reject) => {
    child.on("error", (e) => reject(new Error(`cannot run storescu (install dcmtk): ${e.message}`)));
    child.on("close", (c) => resolve(c ?? 1));
  });
  bar.stop();
  console.error(`s2m: ${sent - failed} of ${total} files stored${failed ? `, ${failed} refused` : ""}`);
  if (code !== 0 || failed > 0) process.exitCode = 1;
}
