import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { entryForKeyword, entryForTag, standardEntries } from "../../src/dicom/dictionary.js";
import { DICTIONARY_FILE, generate } from "../../scripts/gen-dictionary.js";

describe("the DICOM dictionary", () => {
  it("is exactly what scripts/gen-dictionary.ts generates from the dictionary in dcmjs", () => {
    expect(fs.readFileSync(DICTIONARY_FILE, "utf8")).toBe(generate());
  });

  it("holds every standard element once, with single VRs for the multi-VR ones", () => {
    const all = [...standardEntries()];
    expect(all.length).toBeGreaterThan(5000);
    expect(new Set(all.map((e) => e.keyword)).size).toBe(all.length);
    for (const e of all) expect(e.vr).toMatch(/^[A-Z]{2}$/);
    expect(entryForTag(0x7fe00010)).toEqual({ tag: 0x7fe00010, vr: "OW", keyword: "PixelData" });
    expect(entryForTag(0x00280106)?.vr).toBe("US"); // SmallestImagePixelValue, US or SS
    expect(entryForKeyword("PatientName")).toEqual({ tag: 0x00100010, vr: "PN", keyword: "PatientName" });
    // retired elements keep their keyword without the prefix
    expect(entryForTag(0x00080040)?.keyword).toBe("DataSetType");
  });
});
