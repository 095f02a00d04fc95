/**
 * Real-world files: pydicom's test corpus and the dicom3tools example, when installed on this machine
 * (Debian packages python3-pydicom and dicom3tools). Vendor private blocks, RT plan/dose/struct, SR,
 * waveforms, enhanced/multi-frame, deflated, big endian, RLE/JPEG/J2K encapsulated pixel data, UN
 * sequences and character sets. Every readable file must come out parseable by dcmdump, with no
 * dciodvfy error the input did not have, and without the original patient name or instance UIDs.
 */
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { inflateRawSync } from "node:zlib";
import dicomParser from "dicom-parser";
import { afterAll, describe, expect, it } from "vitest";
import { DeidParseError, deidentify } from "../../src/deid/index.js";
import { ctx, dciodvfyErrors, dcmdump, readFile, tempDir } from "./helpers.js";

const SOURCES = [
  "/usr/lib/python3/dist-packages/pydicom/data/test_files",
  "/usr/lib/python3/dist-packages/pydicom/data/charset_files",
  "/usr/share/doc/dicom3tools/examples",
].filter((d) => existsSync(d));

/** Files the engine must refuse (not Part-10, truncated, corrupt, or without SOP UIDs / transfer syntax). */
const UNREADABLE = new Set([
  "ExplVR_BigEndNoMeta.dcm",
  "ExplVR_LitEndNoMeta.dcm",
  "no_meta.dcm",
  "rtstruct.dcm",
  "MR_truncated.dcm",
  "rtplan_truncated.dcm",
  "SC_rgb_jpeg.dcm",
  "meta_missing_tsyntax.dcm",
  "empty_charset_LEI.dcm",
  "nested_priv_SQ.dcm",
]);

const files = SOURCES.flatMap((d) =>
  readdirSync(d)
    .filter((n) => n.endsWith(".dcm"))
    .sort()
    .map((n) => path.join(d, n)),
);

/** dicom-parser's hook for deflated files. */
function inflater(bytes: Uint8Array, position: number): Uint8Array {
  const inflated = inflateRawSync(bytes.subarray(position));
  const out = new Uint8Array(position + inflated.length);
  out.set(bytes.subarray(0, position));
  out.set(inflated, position);
  return out;
}

const { dir, cleanup } = tempDir("deid-corpus");
afterAll(cleanup);

describe.skipIf(files.length === 0)("real-world corpus", () => {
  it.each(files.map((f) => [path.basename(f), f]))("%s", (name, file) => {
    const input = readFile(file);
    if (UNREADABLE.has(name)) {
      expect(() => deidentify(input, ctx({ name: "CORPUS" }))).toThrow(DeidParseError);
      return;
    }
    const r = deidentify(input, ctx({ name: "CORPUS" }));
    if (r.dropped !== undefined) throw new Error(r.dropped);
    const dump = dcmdump(r.bytes, dir);
    expect(dump.status, dump.err).toBe(0);
    expect(dump.err).not.toMatch(/^E:/m);
    const outFile = path.join(dir, name);
    writeFileSync(outFile, r.bytes);
    const before = new Set(dciodvfyErrors(file));
    expect(dciodvfyErrors(outFile).filter((l) => !before.has(l))).toEqual([]);
    // The patient name and instance UIDs are gone. Checked with the basic profile: FIONA keeps free
    // text such as AdditionalPatientHistory, where chrKoreanMulti.dcm repeats the patient name.
    const basic = deidentify(input, ctx({ name: "CORPUS", profile: "basic" }));
    if (basic.dropped !== undefined) throw new Error(basic.dropped);
    expect(dcmdump(basic.bytes, dir).status).toBe(0);
    const original = dicomParser.parseDicom(new Uint8Array(input), { inflater });
    const patientName = original.string("x00100010") ?? "";
    for (const out of [r.bytes, basic.bytes]) {
      for (const tag of ["x00080018", "x0020000d", "x0020000e"]) {
        const uid = original.string(tag);
        if (uid && uid.length > 10) expect(out.indexOf(Buffer.from(uid, "latin1")), tag).toBe(-1);
      }
    }
    if (patientName.length >= 4) expect(basic.bytes.indexOf(Buffer.from(patientName, "latin1"))).toBe(-1);
  });
});
