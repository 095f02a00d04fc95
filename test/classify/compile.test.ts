import { describe, expect, it } from "vitest";
import { classify, compileRules, RulesError } from "../../src/classify/index.js";
import { fakeDs } from "./fake.js";

const GE = { type: "GE", id: "GE", rules: [{ tag: ["0x08", "0x70"], value: "^GE" }] };
const MR = { type: "MR", id: "MR", rules: [{ tag: ["0x08", "0x60"], value: "^MR$" }] };

function loadError(json: unknown): RulesError {
  try {
    compileRules(json, "test.json");
  } catch (err) {
    expect(err).toBeInstanceOf(RulesError);
    return err as RulesError;
  }
  throw new Error("expected a load error");
}

describe("structure validation", () => {
  it("needs an array of definitions", () => {
    expect(loadError({}).message).toMatch(/test\.json: .*JSON array of type definitions/s);
  });

  it("names the definition index, type and key", () => {
    const err = loadError([
      GE,
      { type: "T1", rules: [{ tag: ["0x08", "0x70"], operator: "equals", value: "1" }] },
    ]);
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0]).toMatch(/^definition\[1\] \(type "T1"\) rules\[0\] operator: Invalid enum value/);
  });

  it("refuses unknown keys, which would otherwise turn typos into plain regexps", () => {
    const err = loadError([{ type: "T1", rules: [{ tag: ["Modality"], value: "MR", operater: "==" }] }]);
    expect(err.issues[0]).toMatch(/definition\[0\] \(type "T1"\) rules\[0\]: Unrecognized key.*operater/);
  });

  it("reports missing type, rules and value, and an unknown check", () => {
    const err = loadError([
      { rules: [] },
      { type: "A" },
      { type: "B", rules: [{ tag: ["Modality"] }] },
      { type: "C", check: "StudyLevel", rules: [] },
    ]);
    expect(err.issues.join("\n")).toMatch(/definition\[0\] type: Required/);
    expect(err.issues.join("\n")).toMatch(/definition\[1\] \(type "A"\) rules: Required/);
    expect(err.issues.join("\n")).toMatch(
      /definition\[2\] \(type "B"\) rules\[0\]: operator regexp needs a value/,
    );
    expect(err.issues.join("\n")).toMatch(/definition\[3\] \(type "C"\) check: Invalid literal value/);
  });

  it("names the rule with an invalid regular expression", () => {
    const err = loadError([
      GE,
      { type: "T1", id: "T1ID", rules: [{ tag: ["SeriesDescription"], value: "t1(" }] },
    ]);
    expect(err.issues[0]).toMatch(
      /definition\[1\] \(type "T1", id "T1ID"\) rules\[0\]: invalid regular expression "t1\("/,
    );
  });

  it("refuses Python-only regex syntax it cannot translate", () => {
    expect(loadError([{ type: "X", rules: [{ tag: ["A"], value: "(?x) a b" }] }]).message).toMatch(
      /\(\?x\) is not supported/,
    );
  });

  it("accepts an empty rule list, which always matches (as in the original)", () => {
    const rules = compileRules([{ type: "always", rules: [] }]);
    expect(classify(rules, {}, fakeDs(), [])).toEqual(["always"]);
  });
});

describe("rule / notrule references", () => {
  it("replaces a reference by copies of the referenced entries, appended at the end", () => {
    const rules = compileRules([
      GE,
      { type: "T1", rules: [{ rule: "GE" }, { tag: ["SeriesDescription"], value: "t1" }] },
    ]);
    const t1 = rules.definitions[1]!;
    expect(t1.entries.map((e) => [e.tag, e.from])).toEqual([
      [{ kind: "name", name: "SeriesDescription" }, undefined],
      [{ kind: "tag", group: 8, element: 0x70 }, "GE"],
    ]);
    expect(classify(rules, { SeriesDescription: "t1" }, fakeDs({ Manufacturer: "GE MEDICAL" }), [])).toEqual([
      "GE",
      "T1",
    ]);
    expect(classify(rules, { SeriesDescription: "t1" }, fakeDs({ Manufacturer: "SIEMENS" }), [])).toEqual([]);
  });

  it("expands nested references, whatever their order in the file", () => {
    const json = [
      { type: "A", rules: [{ rule: "B" }] },
      { type: "B", id: "B", rules: [{ rule: "C" }, { tag: ["0x08", "0x60"], value: "^MR$" }] },
      { type: "C", id: "C", rules: [{ rule: "GE" }] },
      GE,
    ];
    const rules = compileRules(json);
    expect(rules.definitions[0]!.entries).toHaveLength(2);
    expect(classify(rules, {}, fakeDs({ Manufacturer: "GE", Modality: "MR" }), [])).toEqual([
      "A",
      "B",
      "C",
      "GE",
    ]);
    expect(classify(rules, {}, fakeDs({ Manufacturer: "GE", Modality: "CT" }), [])).toEqual(["C", "GE"]);
  });

  it('notrule means "none of" the referenced conditions, not "not all of them"', () => {
    const json = [
      GE,
      MR,
      { type: "GEMR", id: "GEMR", rules: [{ rule: "GE" }, { rule: "MR" }] },
      { type: "N", rules: [{ notrule: "GEMR" }] },
    ];
    const rules = compileRules(json);
    const run = (Manufacturer: string, Modality: string) =>
      classify(rules, {}, fakeDs({ Manufacturer, Modality }), []).includes("N");
    expect(run("SIEMENS", "CT")).toBe(true);
    // "not (GE and MR)" would hold here; "none of" does not.
    expect(run("GE", "CT")).toBe(false);
    expect(run("SIEMENS", "MR")).toBe(false);
    expect(run("GE", "MR")).toBe(false);
  });

  it("carries the negation through nested references", () => {
    const json = [
      GE,
      { type: "V", id: "V", rules: [{ rule: "GE" }] },
      { type: "N", rules: [{ notrule: "V" }] },
    ];
    const rules = compileRules(json);
    expect(rules.definitions[2]!.entries.map((e) => e.negate)).toEqual([true]);
    expect(classify(rules, {}, fakeDs({ Manufacturer: "SIEMENS" }), [])).toEqual(["N"]);
  });

  it("sets negate on copied entries rather than toggling it (as the original)", () => {
    const json = [
      { type: "notGE", id: "NOTGE", rules: [{ tag: ["0x08", "0x70"], value: "^GE", negate: "yes" }] },
      { type: "N", rules: [{ notrule: "NOTGE" }] },
    ];
    const rules = compileRules(json);
    expect(rules.definitions[1]!.entries[0]!.negate).toBe(true);
    expect(classify(rules, {}, fakeDs({ Manufacturer: "SIEMENS" }), [])).toEqual(["notGE", "N"]);
  });

  it("reports an unknown id with the place that references it", () => {
    const err = loadError([
      GE,
      { type: "T1", rules: [{ tag: ["A"], value: "x" }, { rule: "SIEMENSBYMANUFACTURER" }] },
    ]);
    expect(err.issues).toEqual([
      'definition[1] (type "T1") rules[1]: unknown rule id "SIEMENSBYMANUFACTURER"',
    ]);
  });

  it("reports a reference cycle", () => {
    const err = loadError([
      { type: "A", id: "A", rules: [{ rule: "B" }] },
      { type: "B", id: "B", rules: [{ notrule: "C" }] },
      { type: "C", id: "C", rules: [{ rule: "A" }] },
    ]);
    expect(err.issues).toEqual(["reference cycle: A -> B -> C -> A"]);
    expect(loadError([{ type: "S", id: "S", rules: [{ rule: "S" }] }]).issues).toEqual([
      "reference cycle: S -> S",
    ]);
  });

  it("reports a duplicate id", () => {
    expect(loadError([GE, { ...GE, type: "GE2" }]).issues[0]).toMatch(
      /definition\[1\] \(type "GE2", id "GE"\): duplicate id "GE"/,
    );
  });
});

describe("warnings", () => {
  it("flags SeriesLevel on a type that has other definitions", () => {
    const rules = compileRules([
      { type: "X", rules: [] },
      { type: "X", check: "SeriesLevel", rules: [] },
    ]);
    expect(rules.warnings).toHaveLength(1);
    expect(rules.warnings[0]).toMatch(/definition\[1\] \(type "X"\) is SeriesLevel .* definition\[0\]/);
  });
});
