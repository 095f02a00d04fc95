import { describe, expect, it } from "vitest";
import { MetadataError, parseMetaOptions, parseMetadata } from "../../src/wsi/metadata.js";

describe("parseMetadata", () => {
  it("accepts the original's patho_* names as aliases", () => {
    expect(
      parseMetadata({ patho_block_nr: "B1", patho_stain: "H&E", patho_slide_nr: 3, specimen: " colon " }),
    ).toEqual({ block: "B1", stain: "H&E", slideNr: "3", specimen: "colon" });
  });

  it("names the field for unknown keys, over-long values and bad characters", () => {
    expect(() => parseMetadata({ colour: "x" })).toThrow(/unknown pathology field "colour"/);
    expect(() => parseMetadata({ block: "x".repeat(17) })).toThrow(/block: longer than 16/);
    expect(() => parseMetadata({ stain: "a\\b" })).toThrow(/stain: contains characters/);
    expect(() => parseMetadata({ department: "a\nb" })).toThrow(MetadataError);
  });

  it("skips empty values", () => {
    expect(parseMetadata({ block: "", stain: undefined })).toEqual({});
  });
});

describe("parseMetaOptions", () => {
  it("parses key=value and keeps '=' inside values", () => {
    expect(parseMetaOptions(["stain=HE", "specimen=a=b"])).toEqual({ stain: "HE", specimen: "a=b" });
  });

  it("refuses an option without key=value", () => {
    expect(() => parseMetaOptions(["stain"])).toThrow(/expected key=value/);
  });
});
