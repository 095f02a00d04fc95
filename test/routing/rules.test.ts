import { describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/schema.js";
import {
  evaluateRule,
  evaluateRules,
  pyMatch,
  routingConfigProblems,
  type RoutingRule,
} from "../../src/routing/rules.js";

const study = { calledAe: "FIONA", callingAe: "SCANNER1", patientId: "PROJ_0001", patientName: "PROJ^0001" };

describe("pyMatch (Python re.match)", () => {
  it("anchors at the start only", () => {
    expect(pyMatch("PROJ", "PROJ_0001")).toBe(true);
    expect(pyMatch("0001", "PROJ_0001")).toBe(false);
    expect(pyMatch("PROJ_\\d{4}$", "PROJ_0001")).toBe(true);
    expect(pyMatch("PROJ_\\d{3}$", "PROJ_0001")).toBe(false);
    expect(pyMatch("A|PROJ", "PROJ_0001")).toBe(true); // alternation stays anchored
    expect(pyMatch("A|0001", "PROJ_0001")).toBe(false);
  });
  it("understands Python-only syntax", () => {
    expect(pyMatch("(?i)proj", "PROJ_0001")).toBe(true);
    expect(pyMatch("(?P<p>PROJ)_(?P=p)?", "PROJ_0001")).toBe(true);
  });
  it("is not confused by a reused pattern (no lastIndex leaks)", () => {
    for (let i = 0; i < 3; i++) expect(pyMatch("P", "PX")).toBe(true);
  });
});

describe("routing rules", () => {
  const base: RoutingRule = { project: "PROJ", calledAe: "FIONA", patientId: "PROJ_" };

  // Every combination of (called, calling) x (id, name) matches: the rule fires iff
  // (called || calling) && (id || name).
  const combos = [false, true].flatMap((called) =>
    [false, true].flatMap((calling) =>
      [false, true].flatMap((id) => [false, true].map((name) => ({ called, calling, id, name }))),
    ),
  );
  it.each(combos)("called=$called calling=$calling id=$id name=$name", ({ called, calling, id, name }) => {
    const rule: RoutingRule = {
      project: "PROJ",
      calledAe: called ? "FIONA" : "OTHER",
      callingAe: calling ? "SCANNER1" : "OTHER",
      patientId: id ? "PROJ_" : "NOPE",
      patientName: name ? "PROJ\\^" : "NOPE",
      event: "baseline",
    };
    const d = evaluateRule(rule, study);
    const expected = (called || calling) && (id || name);
    expect(d !== undefined).toBe(expected);
    if (d) {
      expect(d.participant).toBe(id ? "PROJ_0001" : "PROJ^0001");
      expect(d.event).toBe("baseline");
      expect(d.matched).toEqual({ calledAe: called, callingAe: calling, patientId: id, patientName: name });
    }
  });

  it("treats an empty or absent pattern as not matching (not as match-all)", () => {
    expect(evaluateRule({ ...base, patientId: "" }, study)).toBeUndefined();
    expect(evaluateRule({ ...base, patientId: undefined }, study)).toBeUndefined();
    expect(evaluateRule({ ...base, patientId: "", patientName: "PROJ" }, study)?.participant).toBe(
      "PROJ^0001",
    );
    expect(evaluateRule({ ...base, calledAe: "", callingAe: "SCANNER1" }, study)).toBeDefined();
    expect(evaluateRule({ ...base, calledAe: "", callingAe: "" }, study)).toBeUndefined();
    expect(evaluateRule({ ...base, calledAe: undefined }, study)).toBeUndefined();
  });

  it("compares AE titles for equality after trimming, case-sensitively", () => {
    expect(evaluateRule({ ...base, calledAe: " FIONA " }, study)).toBeDefined();
    expect(evaluateRule({ ...base, calledAe: "FIO" }, study)).toBeUndefined();
    expect(evaluateRule({ ...base, calledAe: "fiona" }, study)).toBeUndefined();
    expect(evaluateRule({ ...base, calledAe: "FIONA.*" }, study)).toBeUndefined();
  });

  it("uses the PatientID when both patterns match, the whole value not the matched prefix", () => {
    const d = evaluateRule({ ...base, patientId: "P", patientName: "P" }, study);
    expect(d?.participant).toBe("PROJ_0001");
  });

  it("matches against a missing PatientID as an empty string", () => {
    expect(evaluateRule({ ...base, patientId: "PROJ" }, { ...study, patientId: undefined })).toBeUndefined();
  });

  it("drops an empty event and skips inactive rules", () => {
    expect(evaluateRule({ ...base, event: "  " }, study)?.event).toBeUndefined();
    expect(evaluateRule({ ...base, active: false }, study)).toBeUndefined();
  });

  it("returns every matching rule once per (project, participant, event)", () => {
    const rules: RoutingRule[] = [
      { ...base, name: "a" },
      { ...base, name: "dup", callingAe: "SCANNER1" },
      { ...base, project: "OTHER", name: "b" },
      { ...base, patientId: "X", name: "no" },
    ];
    const ds = evaluateRules(rules, study);
    expect(ds.map((d) => [d.rule, d.project, d.ruleName])).toEqual([
      [0, "PROJ", "a"],
      [2, "OTHER", "b"],
    ]);
  });
});

describe("routing configuration", () => {
  it("validates rules with zod and reports cross-references", () => {
    const cfg = configSchema.parse({
      projects: [{ name: "PROJ", events: ["baseline"] }],
      routing: { rules: [{ calledAe: "FIONA", patientId: "PROJ_", project: "PROJ", event: "baseline" }] },
    });
    expect(cfg.routing.rules[0]).toMatchObject({ active: true, project: "PROJ" });
    expect(routingConfigProblems(cfg)).toEqual([]);
    const bad = configSchema.parse({
      projects: [{ name: "PROJ", events: ["baseline"] }],
      routing: {
        rules: [
          { calledAe: "FIONA", patientId: "X", project: "NOPE" },
          { callingAe: "S", patientName: "Y", project: "PROJ", event: "later" },
        ],
      },
    });
    expect(routingConfigProblems(bad)).toEqual([
      "routing.rules[0]: unknown project NOPE",
      "routing.rules[1]: event later is not one of project PROJ's events",
    ]);
  });

  it("rejects rules that could never match and invalid patterns", () => {
    const parse = (rule: object) => configSchema.safeParse({ routing: { rules: [rule] } }).success;
    expect(parse({ patientId: "X", project: "P" })).toBe(false);
    expect(parse({ calledAe: "A", project: "P" })).toBe(false);
    expect(parse({ calledAe: "A", patientId: "(", project: "P" })).toBe(false);
    expect(parse({ calledAe: "A", patientId: "X", project: "P", extra: 1 })).toBe(false);
    expect(parse({ calledAe: "A", patientId: "X", project: "P" })).toBe(true);
  });
});
