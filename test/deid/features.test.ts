/** Project features: presentation-state dropping, burned-in series, pixel-rectangle cleaning. */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { element as el, generateStudy, type GeneratedStudy } from "../support/generate.js";
import {
  DeidRefusedError,
  deidentify,
  dropReason,
  projectDeidSchema,
  type ProjectDeidInput,
} from "../../src/deid/index.js";
import { ctx, deid, items, parse, pixelBytes, readFile, tempDir, toEncapsulated, value } from "./helpers.js";

const { dir, cleanup } = tempDir("deid-features");
afterAll(cleanup);

let mr: GeneratedStudy;
let burned: GeneratedStudy;
let ps: GeneratedStudy;

beforeAll(() => {
  mr = generateStudy({ outDir: path.join(dir, "mr"), seed: "feat", instancesPerSeries: 1 });
  burned = generateStudy({
    outDir: path.join(dir, "burned"),
    seed: "burned",
    modality: "SC",
    series: [{ instances: 1, extra: { "00280301": el("CS", "YES") } }],
  });
  ps = generateStudy({
    outDir: path.join(dir, "ps"),
    seed: "ps",
    modality: "SC",
    series: [{ instances: 1, extra: { "00080016": el("UI", "1.2.840.10008.5.1.4.1.1.11.1") } }],
  });
});

const RECTANGLES: ProjectDeidInput["features"] = {
  pixelRectangles: [
    { manufacturer: "GE", rectangles: [{ x: 0, y: 0, width: 256, height: 256 }] },
    {
      manufacturer: "siemens",
      model: "PRISMA",
      rows: 256,
      columns: 256,
      rectangles: [{ x: 10, y: 20, width: 30, height: 5 }],
    },
  ],
};

describe("presentation states", () => {
  it("are dropped when the project says so, kept otherwise", () => {
    const bytes = readFile(ps.files[0]!);
    expect(deidentify(bytes, ctx({ name: "P", features: { dropPresentationStates: true } }))).toEqual({
      dropped: expect.stringMatching(/presentation state/),
    });
    expect(deidentify(bytes, ctx({ name: "P" })).dropped).toBeUndefined();
  });
});

describe("burned-in annotation", () => {
  it("BurnedInAnnotation YES or CHECKBURNEDINFO is dropped with burnedIn drop", () => {
    const project = { name: "P", features: { burnedIn: "drop" as const } };
    expect(deidentify(readFile(burned.files[0]!), ctx(project)).dropped).toMatch(/burned-in/);
    expect(
      deidentify(readFile(mr.files[0]!), ctx(project, { classifyTypes: ["MR", "CHECKBURNEDINFO"] })).dropped,
    ).toMatch(/burned-in/);
    expect(
      deidentify(readFile(mr.files[0]!), ctx(project, { classifyTypes: ["MR"] })).dropped,
    ).toBeUndefined();
  });

  it("with burnedIn clean and no matching rectangles the instance is dropped (it cannot be cleaned)", () => {
    const r = deidentify(readFile(burned.files[0]!), ctx({ name: "P" }));
    expect(r.dropped).toMatch(/no pixel rectangles/);
  });

  it("with burnedIn send the instance goes out unchanged in its pixels and flag", () => {
    const input = readFile(burned.files[0]!);
    const r = deid(input, ctx({ name: "P", features: { burnedIn: "send" } }));
    expect(value(parse(r.bytes).dict, "00280301")).toBe("YES");
    expect(pixelBytes(r.bytes).equals(pixelBytes(input))).toBe(true);
  });

  it("dropReason works on header facts alone", () => {
    const project = projectDeidSchema.parse({
      name: "P",
      features: { dropPresentationStates: true, ...RECTANGLES },
    });
    expect(dropReason({ sopClassUid: "1.2.840.10008.5.1.4.1.1.11.2" }, project)).toMatch(/presentation/);
    expect(dropReason({ sopClassUid: "1.2.840.10008.5.1.4.1.1.4" }, project)).toBeUndefined();
    expect(dropReason({ burnedInAnnotation: "YES", manufacturer: "ACME" }, project)).toMatch(
      /no pixel rectangles/,
    );
    expect(dropReason({ burnedInAnnotation: "YES", manufacturer: "GE MEDICAL" }, project)).toBeUndefined();
  });
});

describe("pixel rectangles", () => {
  it("blank the matching rectangle in uncompressed pixels, leave the rest, set BurnedInAnnotation NO and code 113101", () => {
    const input = readFile(mr.files[0]!);
    const r = deid(input, ctx({ name: "P", features: RECTANGLES }, { classifyTypes: ["CHECKBURNEDINFO"] }));
    expect(r.pixelsCleaned).toBe(true);
    const before = pixelBytes(input);
    const after = pixelBytes(r.bytes);
    expect(after.length).toBe(before.length);
    let blanked = 0;
    for (let y = 0; y < 256; y++) {
      for (let x = 0; x < 256; x++) {
        const at = (y * 256 + x) * 2;
        const inside = x >= 10 && x < 40 && y >= 20 && y < 25;
        if (inside) {
          expect(after.readUInt16LE(at)).toBe(0);
          blanked++;
        } else if (after.readUInt16LE(at) !== before.readUInt16LE(at)) {
          throw new Error(`pixel ${x},${y} changed outside the rectangle`);
        }
      }
    }
    expect(blanked).toBe(150);
    expect(input.readUInt16LE(input.length - before.length + (20 * 256 + 10) * 2)).not.toBe(0);
    const { dict } = parse(r.bytes);
    expect(items(dict, "00120064").map((i) => value(i, "00080100"))).toContain("113101");
  });

  it("also apply to an instance flagged BurnedInAnnotation YES, which then says NO", () => {
    const project = {
      name: "P",
      features: { pixelRectangles: [{ rectangles: [{ x: 0, y: 0, width: 4, height: 4 }] }] },
    };
    const r = deid(readFile(burned.files[0]!), ctx(project));
    expect(r.pixelsCleaned).toBe(true);
    expect(value(parse(r.bytes).dict, "00280301")).toBe("NO");
    expect(pixelBytes(r.bytes).subarray(0, 8).equals(Buffer.alloc(8))).toBe(true);
  });

  it("work in big endian files", () => {
    const be = generateStudy({
      outDir: path.join(dir, "be"),
      seed: "feat",
      transferSyntax: "explicit-be",
      instancesPerSeries: 1,
    });
    const r = deid(readFile(be.files[0]!), ctx({ name: "P", features: RECTANGLES }));
    expect(r.pixelsCleaned).toBe(true);
    const after = pixelBytes(r.bytes);
    expect(after.readUInt16BE((20 * 256 + 10) * 2)).toBe(0);
    expect(after.readUInt16BE((20 * 256 + 9) * 2)).not.toBe(0);
  });

  it("are refused with a clear error for compressed pixel data", () => {
    const input = toEncapsulated(
      readFile(mr.files[0]!),
      mr.sopClassUid,
      mr.sopInstanceUids[0]!,
      "1.2.840.10008.1.2.4.70",
    );
    expect(() => deidentify(input, ctx({ name: "P", features: RECTANGLES }))).toThrow(DeidRefusedError);
    expect(() => deidentify(input, ctx({ name: "P", features: RECTANGLES }))).toThrow(/compressed/);
    // without a matching signature nothing needs cleaning and the file goes through
    expect(deid(input, ctx({ name: "P" })).pixelsCleaned).toBe(false);
  });
});
