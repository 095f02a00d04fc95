import { describe, expect, it } from "vitest";
import { matches } from "./fake.js";

const MANUFACTURER = ["0x08", "0x70"];
const IMAGE_TYPE = ["0x08", "0x08"];
const ROWS = ["0x28", "0x10"];
const IOP = ["0x20", "0x37"];

describe("regexp (default operator)", () => {
  it("is an unanchored search", () => {
    expect(matches([{ tag: MANUFACTURER, value: "MEDICAL" }], { Manufacturer: "GE MEDICAL SYSTEMS" })).toBe(
      true,
    );
    expect(matches([{ tag: MANUFACTURER, value: "^MEDICAL" }], { Manufacturer: "GE MEDICAL SYSTEMS" })).toBe(
      false,
    );
    expect(matches([{ tag: MANUFACTURER, operator: "regexp", value: "^GE" }], { Manufacturer: "GE" })).toBe(
      true,
    );
  });

  it("translates a leading (?i) into the i flag", () => {
    expect(matches([{ tag: MANUFACTURER, value: "(?i)^siemens" }], { Manufacturer: "SIEMENS" })).toBe(true);
    expect(matches([{ tag: MANUFACTURER, value: "^siemens" }], { Manufacturer: "SIEMENS" })).toBe(false);
  });

  it("translates Python named groups, \\A and \\Z", () => {
    const rule = { tag: MANUFACTURER, value: "\\A(?P<v>AB)-(?P=v)\\Z" };
    expect(matches([rule], { Manufacturer: "AB-AB" })).toBe(true);
    expect(matches([rule], { Manufacturer: "AB-AB " })).toBe(false);
  });

  it("matches lists against Python's str() of them", () => {
    const t1 = { tag: ["AcquisitionMatrix"], value: "0, 256, 256, 0" };
    expect(matches([t1], {}, { AcquisitionMatrix: [0, 256, 256, 0] })).toBe(true);
    expect(matches([t1], {}, { AcquisitionMatrix: "[0, 256, 256, 0]" })).toBe(true);
    const orig = { tag: IMAGE_TYPE, value: "^\\['ORIGINAL', 'PRIMARY'" };
    expect(matches([orig], { ImageType: ["ORIGINAL", "PRIMARY", "M"] })).toBe(true);
  });

  it("sees a missing tag as the empty string", () => {
    expect(matches([{ tag: ["0x10", "0x10"], value: "^$" }], {})).toBe(true);
    expect(matches([{ tag: ["0x10", "0x10"], value: "." }], {})).toBe(false);
  });

  it("treats a 1-3 character numeric value as a literal, not a tag (the original's trap)", () => {
    // The original read "60" as tag (0006,0000) first.
    expect(matches([{ tag: ["NumSlices"], value: "60" }], { "0006,0000": "x" }, { NumSlices: "60" })).toBe(
      true,
    );
    expect(matches([{ tag: ["NumSlices"], value: "60" }], {}, { NumSlices: "81" })).toBe(false);
  });
});

describe("numeric operators", () => {
  const cases: Array<[string, string, number, boolean]> = [
    ["==", "256", 256, true],
    ["==", "256", 255, false],
    ["!=", "256", 255, true],
    ["!=", "256", 256, false],
    ["<", "256", 255, true],
    ["<", "256", 256, false],
    [">", "1", 2, true],
    [">", "1", 1, false],
  ];
  it.each(cases)("tag %s %s with tag %d -> %s", (operator, value, rows, expected) => {
    expect(matches([{ tag: ROWS, operator, value }], { Rows: rows })).toBe(expected);
  });

  it("reads numeric strings on both sides, like Python float()", () => {
    expect(matches([{ tag: ["NumFiles"], operator: ">", value: "100" }], {}, { NumFiles: " 101 " })).toBe(
      true,
    );
    expect(matches([{ tag: ["NumSlices"], operator: "==", value: 1 }], {}, { NumSlices: "1.0" })).toBe(true);
  });

  it("fails on text, a missing tag or a multi-valued tag, even when negated (the original passed or crashed)", () => {
    for (const negate of [undefined, "yes"]) {
      const e = (extra: object) => [
        { tag: ROWS, operator: "==", value: "1", ...(negate && { negate }), ...extra },
      ];
      expect(matches(e({}), { Rows: "abc" })).toBe(false);
      expect(matches(e({}), {})).toBe(false);
      expect(matches(e({}), { Rows: [1, 1] })).toBe(false);
    }
  });

  it("refuses a literal non-numeric value at load", () => {
    expect(() => matches([{ tag: ROWS, operator: "<", value: "1.5mm" }])).toThrow(/needs a numeric value/);
  });
});

describe("contains", () => {
  it("is exact membership for multi-valued tags", () => {
    expect(
      matches([{ tag: IMAGE_TYPE, operator: "contains", value: "ORIGINAL" }], {
        ImageType: ["ORIGINAL", "PRIMARY"],
      }),
    ).toBe(true);
    expect(
      matches([{ tag: IMAGE_TYPE, operator: "contains", value: "ORIG" }], {
        ImageType: ["ORIGINAL", "PRIMARY"],
      }),
    ).toBe(false);
    expect(
      matches([{ tag: ["0x18", "0x1310"], operator: "contains", value: "256" }], {
        AcquisitionMatrix: [0, 256, 256, 0],
      }),
    ).toBe(true);
  });

  it("is a substring test for text", () => {
    expect(
      matches([{ tag: IMAGE_TYPE, operator: "contains", value: "ORIG" }], { ImageType: "ORIGINAL" }),
    ).toBe(true);
    expect(
      matches([{ tag: IMAGE_TYPE, operator: "contains", value: "DERIVED" }], { ImageType: "ORIGINAL" }),
    ).toBe(false);
  });

  it("works on ClassifyType", () => {
    expect(
      matches([{ tag: ["ClassifyType"], operator: "contains", value: "axial" }], {}, {}, ["MR", "axial"]),
    ).toBe(true);
    expect(
      matches([{ tag: ["ClassifyType"], operator: "contains", value: "axi" }], {}, {}, ["MR", "axial"]),
    ).toBe(false);
  });

  it("is false on a missing tag, so a negated contains passes", () => {
    const e = { tag: IMAGE_TYPE, operator: "contains", value: "PROJECTION IMAGE" };
    expect(matches([e], {})).toBe(false);
    expect(matches([{ ...e, negate: "yes" }], {})).toBe(true);
  });
});

describe("exist / notexist", () => {
  it("tests presence in the series JSON or the dataset", () => {
    expect(matches([{ tag: ["NumSlices"], operator: "exist" }], {}, { NumSlices: "60" })).toBe(true);
    expect(matches([{ tag: ["DiffusionBValue"], operator: "exist" }], { DiffusionBValue: 1000 })).toBe(true);
    expect(matches([{ tag: ["0x18", "0x9087"], operator: "exist" }], {})).toBe(false);
    expect(matches([{ tag: ["0x18", "0x9087"], operator: "notexist" }], {})).toBe(true);
    expect(matches([{ tag: ["0x18", "0x9087"], operator: "notexist" }], { DiffusionBValue: 0 })).toBe(false);
  });
});

describe("approx", () => {
  const axial = { tag: IOP, operator: "approx", value: [1, 0, 0, 0, 1, 0] };

  it("compares every element within the default 1e-4", () => {
    expect(matches([axial], { ImageOrientationPatient: [1, 0, 0, 0, 1, 0] })).toBe(true);
    expect(matches([axial], { ImageOrientationPatient: ["0.99995", "0", "0", "0", "1", "0.00005"] })).toBe(
      true,
    );
    expect(matches([axial], { ImageOrientationPatient: [0.999, 0, 0, 0, 1, 0] })).toBe(false);
  });

  it("honours approxLevel given as a string or a number", () => {
    const iop = { ImageOrientationPatient: [0.999, 0.04, 0, 0, 1, 0] };
    expect(matches([{ ...axial, approxLevel: "0.05" }], iop)).toBe(true);
    expect(matches([{ ...axial, approxLevel: 0.01 }], iop)).toBe(false);
  });

  it("accepts the rule list as a string", () => {
    const iop = { ImageOrientationPatient: [1, 0, 0, 0, 1, 0] };
    expect(matches([{ ...axial, value: "[1,0,0,0,1,0]" }], iop)).toBe(true);
    expect(matches([{ ...axial, value: "1\\0\\0\\0\\1\\0" }], iop)).toBe(true);
  });

  it("compares scalars", () => {
    expect(
      matches([{ tag: ["0x18", "0x50"], operator: "approx", value: "1.2", approxLevel: "0.06" }], {
        "0018,0050": 1.25,
      }),
    ).toBe(true);
    expect(
      matches([{ tag: ["0x18", "0x50"], operator: "approx", value: 1.2 }], { "0018,0050": "1.25" }),
    ).toBe(false);
  });

  it("fails on lists of different length or a missing tag, negated or not", () => {
    for (const negate of [false, true]) {
      expect(matches([{ ...axial, negate }], { ImageOrientationPatient: [1, 0, 0, 0, 1] })).toBe(false);
      expect(matches([{ ...axial, negate }], {})).toBe(false);
    }
  });

  it("refuses a non-numeric literal at load", () => {
    expect(() => matches([{ ...axial, value: "[1,a]" }])).toThrow(/approx needs a number/);
  });
});

describe("negate", () => {
  it('inverts an entry with "yes" or true, and not with "no" or false', () => {
    const base = { tag: MANUFACTURER, value: "^GE" };
    const ds = { Manufacturer: "GE MEDICAL SYSTEMS" };
    expect(matches([{ ...base, negate: "yes" }], ds)).toBe(false);
    expect(matches([{ ...base, negate: true }], ds)).toBe(false);
    expect(matches([{ ...base, negate: "no" }], ds)).toBe(true);
    expect(matches([{ ...base, negate: false }], ds)).toBe(true);
    expect(matches([{ ...base, negate: "yes" }], { Manufacturer: "SIEMENS" })).toBe(true);
  });

  it("inverts approx as a whole (not element by element as the original did)", () => {
    const notAxial = { tag: IOP, operator: "approx", value: [1, 0, 0, 0, 1, 0], negate: "yes" };
    expect(matches([notAxial], { ImageOrientationPatient: [0.9, 0.43, 0, 0, 0, -1] })).toBe(true);
    expect(matches([notAxial], { ImageOrientationPatient: [1, 0, 0, 0, 1, 0] })).toBe(false);
  });
});

describe("tag paths", () => {
  it("1 element: series JSON first, then the DICOM keyword", () => {
    const e = [{ tag: ["SeriesDescription"], value: "^json$" }];
    expect(matches(e, { SeriesDescription: "dataset" }, { SeriesDescription: "json" })).toBe(true);
    expect(matches(e, { SeriesDescription: "json" }, {})).toBe(true);
    expect(matches(e, { SeriesDescription: "json" }, { SeriesDescription: null })).toBe(true);
  });

  it("2 elements: hex group/element in any case", () => {
    expect(matches([{ tag: ["0X0018", "0x0024"], value: "tfl3d" }], { SequenceName: "*tfl3d1_16ns" })).toBe(
      true,
    );
  });

  it("3 elements: one value of a multi-valued element", () => {
    const e = (index: string) => [{ tag: ["0x43", "0x1039", index], operator: "==", value: "1000" }];
    expect(matches(e("0"), { "0043,1039": [1000, 8, 0, 0] })).toBe(true);
    expect(matches(e("1"), { "0043,1039": [1000, 8, 0, 0] })).toBe(false);
    expect(matches(e("0"), { "0043,1039": "1000" })).toBe(true);
    expect(matches([{ tag: ["0x43", "0x1039", "7"], operator: "exist" }], { "0043,1039": [1000, 8] })).toBe(
      false,
    );
  });

  it("4 and 6 elements: item 0 of one or two sequences", () => {
    expect(
      matches([{ tag: ["0X2005", "0X140f", "0X18", "0X9005"], value: "DwiSE" }], {
        "2005,140F>0018,9005": "DwiSE",
      }),
    ).toBe(true);
    const six = ["0X5200", "0X9230", "0X2005", "0X140f", "0X0018", "0X1310"];
    expect(
      matches([{ tag: six, value: "0, 320, 320, 0" }], { "5200,9230>2005,140F>0018,1310": [0, 320, 320, 0] }),
    ).toBe(true);
    expect(matches([{ tag: six, operator: "notexist" }], {})).toBe(true);
  });

  it("other lengths and non-hex parts are load errors (the original skipped the entry as passing)", () => {
    expect(() => matches([{ tag: ["0x08", "0x08", "0", "1", "2"], value: "x" }])).toThrow(
      /5 elements; expected 1, 2, 3, 4 or 6/,
    );
    expect(() => matches([{ tag: ["0008", "0x08"], value: "x" }])).toThrow(/group "0008" must be hex/);
    expect(() => matches([{ tag: [], value: "x" }])).toThrow(/tag/);
  });
});

describe("value naming another tag", () => {
  it("compares two tags of the same file (array path or known field/keyword)", () => {
    const ds = { Rows: 256, "0028,0011": 256 };
    expect(matches([{ tag: ROWS, operator: "==", value: ["0x28", "0x11"] }], ds)).toBe(true);
    expect(
      matches([{ tag: ROWS, operator: "==", value: ["0x28", "0x11"] }], { ...ds, "0028,0011": 128 }),
    ).toBe(false);
    expect(
      matches(
        [{ tag: ["NumSlices"], operator: "==", value: "ImagesInAcquisition" }],
        {},
        { NumSlices: 60, ImagesInAcquisition: "60" },
      ),
    ).toBe(true);
    expect(
      matches([{ tag: ["EchoTime"], operator: "<", value: "InversionTime" }], {
        EchoTime: 90,
        InversionTime: 2500,
      }),
    ).toBe(true);
  });

  it("falls back to the literal when a name is not a field or keyword of this file", () => {
    expect(
      matches([{ tag: IMAGE_TYPE, operator: "contains", value: "ORIGINAL" }], { ImageType: ["ORIGINAL"] }),
    ).toBe(true);
    expect(matches([{ tag: ["Modality"], value: "Manufacturer" }], { Modality: "Manufacturer" })).toBe(true);
  });

  it("uses another tag's value as a regexp", () => {
    const e = [{ tag: ["SeriesDescription"], value: ["ProtocolName"] }];
    expect(matches(e, {}, { SeriesDescription: "t1_mprage_sag", ProtocolName: "mprage" })).toBe(true);
    expect(matches(e, {}, { SeriesDescription: "t1_mprage_sag", ProtocolName: "^mprage" })).toBe(false);
    expect(matches(e, {}, { SeriesDescription: "x", ProtocolName: "(" })).toBe(false);
  });

  it("fails when an array path names an absent tag", () => {
    expect(matches([{ tag: ROWS, operator: "==", value: ["0x28", "0x11"] }], { Rows: 256 })).toBe(false);
  });
});
