/**
 * Round trips through the four transfer syntaxes (checked with dcmtk's dcmdump), defined-length
 * sequences with group lengths (dcmconv), encapsulated pixel data copied as is, and dciodvfy on an MR
 * and a CT: no error in the output that the input did not have.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import {
  ctx,
  dciodvfyErrors,
  dcmdump,
  deid,
  elementBytes,
  items,
  parse,
  pixelBytes,
  readFile,
  tempDir,
  toDeflated,
  toEncapsulated,
  value,
} from "./helpers.js";

const { dir, cleanup } = tempDir("deid-syntax");
afterAll(cleanup);

const SYNTAXES = {
  "explicit-le": "1.2.840.10008.1.2.1",
  "implicit-le": "1.2.840.10008.1.2",
  "explicit-be": "1.2.840.10008.1.2.2",
  deflated: "1.2.840.10008.1.2.1.99",
} as const;
type SyntaxName = keyof typeof SYNTAXES;

const inputs = new Map<SyntaxName, Buffer>();
let explicitStudy: GeneratedStudy;

beforeAll(() => {
  for (const ts of ["explicit-le", "implicit-le", "explicit-be"] as const) {
    const s = generateStudy({
      outDir: path.join(dir, ts),
      seed: "syntax",
      transferSyntax: ts,
      instancesPerSeries: 1,
    });
    if (ts === "explicit-le") explicitStudy = s;
    inputs.set(ts, readFile(s.files[0]!));
  }
  inputs.set(
    "deflated",
    toDeflated(inputs.get("explicit-le")!, explicitStudy.sopClassUid, explicitStudy.sopInstanceUids[0]!),
  );
});

describe.each(Object.keys(SYNTAXES) as SyntaxName[])("%s", (name) => {
  it("round-trips: same transfer syntax, dcmdump parses it, values and pixels as expected", () => {
    const input = inputs.get(name)!;
    const inDump = dcmdump(input, dir);
    expect(inDump.status).toBe(0);
    for (const privateTags of ["remove", "keep"] as const) {
      const r = deid(input, ctx({ name: "SYN", privateTags }));
      expect(r.transferSyntaxUid).toBe(SYNTAXES[name]);
      const dump = dcmdump(r.bytes, dir, ["-M"]);
      expect(dump.status, dump.err).toBe(0);
      expect(dump.err).not.toMatch(/^E:/m);
      expect(dump.out).toContain("(0010,0010) PN [SUBJ_0001]");
      const { meta, dict } = parse(r.bytes);
      expect(value(meta, "00020010")).toBe(SYNTAXES[name]);
      expect(value(meta, "00020003")).toBe(r.sopInstanceUid);
      expect(value(meta, "00020012")).toBe("2.25.324787041226768125577162794544879044074");
      expect(value(dict, "00080018")).toBe(r.sopInstanceUid);
      expect(value(dict, "00100020")).toBe("SUBJ_0001");
      // Same instance in every syntax => same new UIDs.
      expect(r.sopInstanceUid).toBe(deid(inputs.get("explicit-le")!, ctx({ name: "SYN" })).sopInstanceUid);
      // Pixel data is the input's, byte for byte (deflated: compare after inflating, via the reader).
      if (name !== "deflated") expect(pixelBytes(r.bytes).equals(pixelBytes(input))).toBe(true);
      else {
        const px = dict["7FE00010"]?.Value?.[0] as ArrayBuffer;
        expect(Buffer.from(px).equals(pixelBytes(inputs.get("explicit-le")!))).toBe(true);
      }
      if (privateTags === "keep") expect(value(items(dict, "00091010")[0]!, "00100020")).toBe("SUBJ_0001");
    }
  });
});

describe("sequence and item encodings", () => {
  it("defined-length sequences and items (with group lengths) are re-encoded with correct lengths", () => {
    const src = path.join(dir, "defined-src.dcm");
    const conv = path.join(dir, "defined.dcm");
    writeFileSync(src, inputs.get("explicit-le")!);
    execFileSync("dcmconv", ["+e", "+g", src, conv]);
    const input = readFile(conv);
    expect(dcmdump(input, dir).out).toMatch(/Sequence with explicit length/);
    expect(dcmdump(input, dir).out).toMatch(/GroupLength/);
    const r = deid(input, ctx({ name: "LEN", privateTags: "keep" }));
    const dump = dcmdump(r.bytes, dir);
    expect(dump.status, dump.err).toBe(0);
    expect(dump.err).toBe("");
    expect(dump.out).not.toMatch(/\(0008,0000\)|\(0010,0000\)|\(0020,0000\)/);
    // The private sequence changed inside (public PatientID) and stays defined-length.
    expect(dump.out).toMatch(/\(0009,1010\) SQ \(Sequence with explicit length #=2\)/);
    const { dict } = parse(r.bytes);
    expect(value(items(dict, "00091010")[0]!, "00100020")).toBe("SUBJ_0001");
    expect(value(items(dict, "00091010")[1]!, "00091001")).toBe("item 2 private");
  });

  it("undefined-length sequences keep their delimiters when re-encoded", () => {
    const r = deid(inputs.get("explicit-le")!, ctx({ name: "LEN", privateTags: "keep" }));
    expect(dcmdump(r.bytes, dir).out).toMatch(/\(0009,1010\) SQ \(Sequence with undefined length #=2\)/);
  });

  it("encapsulated pixel data is copied as is", () => {
    const input = toEncapsulated(
      inputs.get("explicit-le")!,
      explicitStudy.sopClassUid,
      explicitStudy.sopInstanceUids[0]!,
      "1.2.840.10008.1.2.4.50",
    );
    const r = deid(input, ctx({ name: "ENC" }));
    expect(r.transferSyntaxUid).toBe("1.2.840.10008.1.2.4.50");
    const tail = input.subarray(input.indexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42])));
    expect(r.bytes.subarray(r.bytes.length - tail.length).equals(tail)).toBe(true);
    const dump = dcmdump(r.bytes, dir);
    expect(dump.status, dump.err).toBe(0);
    expect(dump.out).toContain("PixelSequence");
  });

  it("an element stored as UN is rewritten with its VR kept (value interpreted by the dictionary)", () => {
    // PatientName written as explicit UN: the engine still replaces it, header VR stays UN.
    const input = Buffer.from(inputs.get("explicit-le")!);
    const name = elementBytes(input, "00100010");
    const unElement = Buffer.concat([
      Buffer.from([0x10, 0x00, 0x10, 0x00, 0x55, 0x4e, 0, 0]),
      Buffer.alloc(4),
    ]);
    unElement.writeUInt32LE(name.length - 8, 8);
    const patched = Buffer.concat([
      input.subarray(0, input.indexOf(name)),
      unElement,
      name.subarray(8),
      input.subarray(input.indexOf(name) + name.length),
    ]);
    const r = deid(patched, ctx({ name: "UN" }));
    const dump = dcmdump(r.bytes, dir);
    expect(dump.status, dump.err).toBe(0);
    expect(r.bytes.indexOf(Buffer.from("PHIMARK^PATIENTNAME"))).toBe(-1);
    expect(r.bytes.indexOf(Buffer.from("SUBJ_0001"))).toBeGreaterThan(0);
  });
});

describe("dciodvfy", () => {
  it.each([
    ["MR", "explicit-le"],
    ["CT", "explicit-le"],
    ["MR", "implicit-le"],
    ["CT", "explicit-be"],
    ["SR", "explicit-le"],
  ] as const)("%s (%s): no new errors", (modality, transferSyntax) => {
    const s = generateStudy({
      outDir: path.join(dir, `iod-${modality}-${transferSyntax}`),
      seed: `iod-${modality}`,
      modality,
      transferSyntax,
      instancesPerSeries: 1,
    });
    const outFile = path.join(dir, `iod-${modality}-${transferSyntax}.dcm`);
    for (const project of [
      { name: "IOD" },
      { name: "IOD", profile: "basic" as const },
      { name: "IOD", privateTags: "keep" as const },
    ]) {
      writeFileSync(outFile, deid(readFile(s.files[0]!), ctx(project)).bytes);
      expect(dciodvfyErrors(outFile), JSON.stringify(project)).toEqual(dciodvfyErrors(s.files[0]!));
    }
  });
});
