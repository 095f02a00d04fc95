import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UploadStore, slideExtension } from "../../src/wsi/uploads.js";

let root: string;
let store: UploadStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "wsi-up-"));
  store = new UploadStore(root, 1000);
});
afterEach(() => rm(root, { recursive: true, force: true }));

const fields = { project: "P", participant: "P_1", metadata: {}, extension: ".svs", size: 10 };

describe("UploadStore", () => {
  it("receives chunks, refuses a wrong offset with 409 and completes at the declared size", async () => {
    const rec = await store.create(fields);
    expect(rec.id).toMatch(/^[0-9a-f]{32}$/);
    await store.append(rec.id, 0, Readable.from([Buffer.from("01234")]));
    await expect(store.append(rec.id, 0, Readable.from([Buffer.from("xx")]))).rejects.toMatchObject({
      status: 409,
    });
    expect(await store.offset(rec.id)).toBe(5);
    const done = await store.append(rec.id, 5, Readable.from([Buffer.from("56789")]));
    expect(done.state).toBe("complete");
    expect(await readFile(store.slidePath(done), "utf8")).toBe("0123456789");
    expect((await store.get(rec.id))?.state).toBe("complete");
  });

  it("refuses oversize files, bad extensions and path-like ids", async () => {
    await expect(store.create({ ...fields, size: 1001 })).rejects.toMatchObject({ status: 413 });
    expect(() => slideExtension("../../etc/passwd")).toThrow(/not accepted/);
    expect(slideExtension("Slide 1.SVS")).toBe(".svs");
    expect(() => store.dir("../x")).toThrow(/invalid upload id/);
  });
});
