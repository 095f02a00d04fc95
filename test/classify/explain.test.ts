import { describe, expect, it } from "vitest";
import {
  classify,
  compileRules,
  explain,
  isPhiTag,
  parseTagPath,
  REDACTED,
} from "../../src/classify/index.js";
import { fakeDs } from "./fake.js";

const rules = compileRules([
  { type: "GE", id: "GE", rules: [{ tag: ["0x08", "0x70"], value: "^GE" }] },
  {
    type: "phantom",
    rules: [
      { rule: "GE" },
      { tag: ["PatientName"], value: "^PHANTOM" },
      { tag: ["0x10", "0x20"], operator: "exist" },
      { tag: ["SeriesDescription"], operator: "contains", value: "QA" },
    ],
  },
  { type: "thin", check: "SeriesLevel", rules: [{ tag: ["0x18", "0x50"], operator: "<", value: "2" }] },
  { type: "same", rules: [{ tag: ["0x28", "0x10"], operator: "==", value: ["0x28", "0x11"] }] },
]);

const ds = fakeDs({
  Manufacturer: "GE MEDICAL SYSTEMS",
  PatientName: "DOE^JANE",
  PatientID: "12345678",
  "0018,0050": "abc",
  Rows: 256,
  "0028,0011": 256,
});
const series = { SeriesDescription: `QA ${"x".repeat(300)}` };

describe("explain", () => {
  it("reports every definition and entry, and ends at what classify returns", () => {
    const report = explain(rules, series, ds, ["thin"]);
    expect(report.map((d) => [d.type, d.matched, d.effect])).toEqual([
      ["GE", true, "added"],
      ["phantom", false, "none"],
      ["thin", false, "removed"],
      ["same", true, "added"],
    ]);
    expect(classify(rules, series, ds, ["thin"])).toEqual(["GE", "same"]);
  });

  it("evaluates entries after a failing one and shows where copied entries came from", () => {
    const phantom = explain(rules, series, ds, [])[1]!;
    expect(phantom.entries.map((e) => [e.tag, e.operator, e.pass])).toEqual([
      ["PatientName", "regexp", false],
      ["(0010,0020)", "exist", true],
      ["SeriesDescription", "contains", true],
      ["(0008,0070)", "regexp", true],
    ]);
    expect(phantom.entries[3]).toMatchObject({ from: "GE", value: "GE MEDICAL SYSTEMS", expected: "^GE" });
  });

  it("redacts patient-identifying values by default and shows them on request", () => {
    const redacted = explain(rules, series, ds, [])[1]!.entries;
    expect(redacted[0]!.value).toBe(REDACTED);
    expect(redacted[1]!.value).toBe(REDACTED);
    expect(JSON.stringify(redacted)).not.toMatch(/DOE|12345678/);
    const shown = explain(rules, series, ds, [], { redactPhi: false })[1]!.entries;
    expect(shown[0]!.value).toBe("DOE^JANE");
  });

  it("truncates long values", () => {
    const value = explain(rules, series, ds, [], { maxValueLength: 20 })[1]!.entries[2]!.value;
    expect(value).toHaveLength(20);
    expect(value.endsWith("…")).toBe(true);
  });

  it("says why values could not be compared, and shows a value read from another tag", () => {
    const report = explain(rules, series, ds, []);
    expect(report[2]!.entries[0]).toMatchObject({
      value: "abc",
      pass: false,
      note: "the tag value is not a single number",
    });
    expect(report[3]!.entries[0]).toMatchObject({ expected: "(0028,0011) = 256", pass: true });
    expect(explain(rules, {}, fakeDs(), [])[0]!.entries[0]!.value).toBe("<absent>");
  });

  it("recognises PHI tags by keyword, PN-looking name, group 0010 and known PN tags", () => {
    const phi = (...parts: string[]) => isPhiTag(parseTagPath(parts));
    expect(phi("PatientBirthDate")).toBe(true);
    expect(phi("AccessionNumber")).toBe(true);
    expect(phi("ReferringPhysicianName")).toBe(true);
    expect(phi("OperatorsName")).toBe(true);
    expect(phi("0x10", "0x1000")).toBe(true);
    expect(phi("0x08", "0x90")).toBe(true);
    expect(phi("0x40", "0x275", "0x08", "0x50")).toBe(true);
    expect(phi("InstitutionName")).toBe(false);
    expect(phi("SequenceName")).toBe(false);
    expect(phi("SeriesDescription")).toBe(false);
    expect(phi("0x08", "0x70")).toBe(false);
  });
});

describe("fiona rules test's lines", () => {
  it("read a negated check as negated, and name the rule a notrule check came from", async () => {
    const { explanationLines } = await import("../../src/cli/rules-test.js");
    const negated = compileRules([
      { type: "GE", id: "GE", rules: [{ tag: ["0x08", "0x70"], value: "^GE" }] },
      {
        type: "notQA",
        rules: [
          { tag: ["SeriesDescription"], operator: "contains", value: "QA", negate: "yes" },
          { notrule: "GE" },
        ],
      },
    ]);
    const lines = explanationLines(
      explain(negated, { SeriesDescription: "T1 axial" }, fakeDs({ Manufacturer: "SIEMENS" }), []),
    );
    expect(lines).toContain('        pass SeriesDescription not contains "QA" <- "T1 axial"');
    expect(lines.some((l) => /^ {8}pass \S+ not regexp "\^GE" <- "SIEMENS" \(from GE\)$/.test(l))).toBe(true);
    expect(lines).toContain("MATCH notQA");
  });
});
