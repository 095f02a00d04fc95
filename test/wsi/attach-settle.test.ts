import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/schema.js";
import { settleUpload } from "../../src/wsi/settle.js";
import type { RunResult } from "../../src/registry/transfers.js";
import { UploadStore } from "../../src/wsi/uploads.js";

const root = mkdtempSync(path.join(tmpdir(), "fiona-wsi-settle-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const store = new UploadStore(root, 1000);

async function completeUpload() {
  const r = await store.create({
    project: "P",
    participant: "P_1",
    metadata: {},
    extension: ".tif",
    size: 4,
  });
  return store.append(r.id, 0, Readable.from([Buffer.from("II*\0")]));
}

const run = (status: RunResult["status"], error?: string): RunResult => ({
  status,
  filesSent: status === "failed" ? 0 : 3,
  filesFailed: status === "done" ? 0 : 1,
  filesDropped: 0,
  durationMs: 10,
  ...(error ? { error } : {}),
});
const job = (uploadId?: string) => ({
  requestId: "r1",
  run: 1,
  studyInstanceUid: "2.25.1",
  project: "P",
  participant: "P_1",
  ...(uploadId ? { uploadId } : {}),
});

describe("settling a slide upload after its transfer run", () => {
  it("marks it sent and deletes the slide file when the run is done", async () => {
    const upload = await completeUpload();
    await settleUpload(configSchema.parse({}), store)(job(upload.id), run("done"));
    expect(await store.get(upload.id)).toMatchObject({ state: "sent" });
    expect(existsSync(store.slidePath(upload))).toBe(false);
  });

  it("keeps the file when deleteUploadAfterSend is off", async () => {
    const upload = await completeUpload();
    const cfg = configSchema.parse({ wsi: { deleteUploadAfterSend: false } });
    await settleUpload(cfg, store)(job(upload.id), run("done"));
    expect(await store.get(upload.id)).toMatchObject({ state: "sent" });
    expect(existsSync(store.slidePath(upload))).toBe(true);
  });

  it("marks a partial run failed with its error and keeps the file", async () => {
    const upload = await completeUpload();
    await settleUpload(configSchema.parse({}), store)(job(upload.id), run("partial", "RESEARCH: refused"));
    expect(await store.get(upload.id)).toMatchObject({ state: "failed", error: "RESEARCH: refused" });
    expect(existsSync(store.slidePath(upload))).toBe(true);
  });

  it("ignores runs that are not a slide's", async () => {
    await expect(settleUpload(configSchema.parse({}), store)(job(), run("done"))).resolves.toBeUndefined();
  });
});
