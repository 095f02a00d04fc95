import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertSlide } from "../../src/wsi/convert.js";
import { startOrthanc, type Orthanc } from "../support/peers.js";
import { DATASET, fakeSvs } from "./support/fixtures.js";

const WSI_PLUGIN = "/usr/share/orthanc/plugins/libOrthancWSI.so";

let dir: string;
let orthanc: Orthanc;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "fiona-wsi-orthanc-"));
  orthanc = await startOrthanc(path.join(dir, "orthanc"), { Plugins: [WSI_PLUGIN] });
});
afterAll(async () => {
  await orthanc?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const get = async <T>(p: string): Promise<T> => (await fetch(`${orthanc.url}${p}`)).json() as Promise<T>;

describe("converted slides in Orthanc", () => {
  it("are stored, decoded and served as a pyramid", async () => {
    const result = await convertSlide(await fakeSvs(dir, { rgb: true }), path.join(dir, "out"), DATASET, {
      keepThumbnail: true,
    });
    execFileSync(
      "storescu",
      [
        "-R",
        "-xy",
        "-aec",
        "RESEARCH",
        "127.0.0.1",
        String(orthanc.dicomPort),
        ...result.instances.map((i) => i.path),
      ],
      {
        env: { ...process.env, TCP_NODELAY: "1" },
      },
    );
    const ids = await get<string[]>("/instances");
    expect(ids.length).toBe(result.instances.length);
    for (const id of ids) {
      const preview = await fetch(`${orthanc.url}/instances/${id}/frames/0/preview`);
      expect(preview.status).toBe(200);
      expect(preview.headers.get("content-type")).toMatch(/^image\//);
    }
    const [series] = await get<string[]>("/series");
    const pyramid = await get<{ Resolutions: number[]; TotalWidth: number }>(`/wsi/pyramids/${series}`);
    expect(pyramid.TotalWidth).toBe(result.instances[0]!.totalColumns);
    expect(pyramid.Resolutions.length).toBe(result.instances.filter((i) => i.imageType === "VOLUME").length);
  });
});
