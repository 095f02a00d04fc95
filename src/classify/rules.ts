import { expandReferences, type ExpandNode, type Item } from "./expand.js";
import { compilePythonRegex } from "./pyregex.js";
import {
  definitionSchema,
  formatIssues,
  leafSchema,
  notRefSchema,
  refSchema,
  type Operator,
  type RawLeaf,
} from "./schema.js";
import { parseTagPath, type TagPath } from "./tagpath.js";
import { toNumber, toNumberList } from "./values.js";

export type { Operator } from "./schema.js";
export type { TagPath } from "./tagpath.js";

export type RuleValue = string | number | Array<string | number>;

/** The rule's `value`, prepared once at load. */
export interface Expected {
  literal: RuleValue | undefined;
  /**
   * The value names another tag of the same file: an array that is a valid tag path, or a string
   * that looks like a field name/keyword ("NumSlices"). Numbers and other strings are literals.
   */
  ref?: TagPath;
  /** An array path must resolve (else the entry fails); a bare name falls back to the literal. */
  refRequired: boolean;
  /** Pre-compiled literal pattern (regexp). */
  regex?: RegExp;
  /** Pre-parsed literal number list (approx). */
  numbers?: number[];
}

export interface CompiledEntry {
  tag: TagPath;
  operator: Operator;
  negate: boolean;
  expected: Expected;
  /** approx tolerance; 1e-4 unless the rule says otherwise. */
  approxLevel: number;
  /** id of the definition this entry was copied from by a rule/notrule reference. */
  from?: string;
}

export interface CompiledDefinition {
  /** Position in the file (0-based). */
  index: number;
  type: string;
  id?: string;
  description?: string;
  seriesLevel: boolean;
  /** All must pass (AND); references already expanded. */
  entries: CompiledEntry[];
}

export interface CompiledRules {
  source?: string;
  definitions: CompiledDefinition[];
  /** Loadable but probably unintended constructs, e.g. SeriesLevel on a type with several definitions. */
  warnings: string[];
}

export class RulesError extends Error {
  constructor(
    readonly issues: string[],
    readonly source?: string,
  ) {
    super(`${source ?? "classify rules"}: ${issues.length} problem(s)\n  ${issues.join("\n  ")}`);
    this.name = "RulesError";
  }
}

const NAME_RE = /^[A-Za-z][A-Za-z0-9_]*$/;
const DEFAULT_APPROX_LEVEL = 1e-4;
const NUMERIC_OPS: ReadonlySet<Operator> = new Set(["==", "!=", "<", ">"]);

/** Validate a parsed classifyRules.json, expand references and pre-compile everything. Throws RulesError. */
export function compileRules(json: unknown, source?: string): CompiledRules {
  if (!Array.isArray(json))
    throw new RulesError(["the file must be a JSON array of type definitions"], source);
  const issues: string[] = [];
  const nodes: Array<ExpandNode & { meta: Omit<CompiledDefinition, "entries"> }> = [];

  json.forEach((raw: unknown, index) => {
    const where = describe(raw, index);
    const parsed = definitionSchema.safeParse(raw);
    if (!parsed.success) {
      issues.push(...formatIssues(where, parsed.error));
      return;
    }
    const def = parsed.data;
    const items = def.rules.flatMap((entry, j) => compileItem(entry, `${where} rules[${j}]`, issues));
    nodes.push({
      id: def.id,
      where,
      items,
      meta: {
        index,
        type: def.type,
        id: def.id,
        description: def.description,
        seriesLevel: def.check === "SeriesLevel",
      },
    });
  });
  if (issues.length === 0) expandReferences(nodes, issues);
  if (issues.length > 0) throw new RulesError(issues, source);

  const definitions = nodes.map((n) => ({ ...n.meta, entries: n.items as CompiledEntry[] }));
  return { source, definitions, warnings: seriesLevelWarnings(definitions) };
}

function describe(raw: unknown, index: number): string {
  const r = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  const names = [
    typeof r.type === "string" ? `type "${r.type}"` : undefined,
    typeof r.id === "string" ? `id "${r.id}"` : undefined,
  ].filter(Boolean);
  return `definition[${index}]${names.length > 0 ? ` (${names.join(", ")})` : ""}`;
}

function compileItem(raw: unknown, where: string, issues: string[]): Item[] {
  const obj = typeof raw === "object" && raw !== null ? raw : {};
  if ("rule" in obj || "notrule" in obj) {
    const notrule = "notrule" in obj;
    const parsed = (notrule ? notRefSchema : refSchema).safeParse(raw);
    if (!parsed.success) {
      issues.push(...formatIssues(where, parsed.error));
      return [];
    }
    const ref = "notrule" in parsed.data ? parsed.data.notrule : parsed.data.rule;
    return [{ ref, negate: notrule, where }];
  }
  const parsed = leafSchema.safeParse(raw);
  if (!parsed.success) {
    issues.push(...formatIssues(where, parsed.error));
    return [];
  }
  try {
    return [compileLeaf(parsed.data)];
  } catch (err) {
    issues.push(`${where}: ${(err as Error).message}`);
    return [];
  }
}

function compileLeaf(raw: RawLeaf): CompiledEntry {
  let tag: TagPath;
  try {
    tag = parseTagPath(raw.tag);
  } catch (err) {
    throw new Error(`tag ${JSON.stringify(raw.tag)}: ${(err as Error).message}`);
  }
  const operator = raw.operator ?? "regexp";
  return {
    tag,
    operator,
    negate: raw.negate === "yes" || raw.negate === true,
    expected: compileExpected(raw.value, operator),
    approxLevel: raw.approxLevel === undefined ? DEFAULT_APPROX_LEVEL : Number(raw.approxLevel),
  };
}

function valueRef(value: RuleValue | undefined): Pick<Expected, "ref" | "refRequired"> {
  if (Array.isArray(value) && value.every((v): v is string => typeof v === "string")) {
    try {
      return { ref: parseTagPath(value), refRequired: true };
    } catch {
      return { refRequired: false };
    }
  }
  if (typeof value === "string" && NAME_RE.test(value))
    return { ref: { kind: "name", name: value }, refRequired: false };
  return { refRequired: false };
}

function compileExpected(literal: RuleValue | undefined, operator: Operator): Expected {
  if (operator === "exist" || operator === "notexist") return { literal, refRequired: false };
  if (literal === undefined) throw new Error(`operator ${operator} needs a value`);
  const expected: Expected = { literal, ...valueRef(literal) };
  if (expected.refRequired) return expected;
  if (operator === "regexp" || operator === "contains") {
    if (Array.isArray(literal)) throw new Error(`operator ${operator} needs a single value, not a list`);
    if (operator === "regexp") {
      try {
        expected.regex = compilePythonRegex(String(literal));
      } catch (err) {
        throw new Error(`invalid regular expression ${JSON.stringify(literal)}: ${(err as Error).message}`);
      }
    }
  } else if (NUMERIC_OPS.has(operator)) {
    if (!expected.ref && toNumber(literal) === undefined)
      throw new Error(`operator ${operator} needs a numeric value, got ${JSON.stringify(literal)}`);
  } else if (operator === "approx") {
    expected.numbers = toNumberList(literal);
    if (!expected.ref && expected.numbers === undefined)
      throw new Error(`operator approx needs a number or a list of numbers, got ${JSON.stringify(literal)}`);
  }
  return expected;
}

/**
 * The original removes a SeriesLevel type whenever that definition fails, even if another definition of
 * the same type matched earlier in the same pass; a later matching definition adds it back. We keep
 * that, and warn because it is rarely what the author meant.
 */
function seriesLevelWarnings(definitions: CompiledDefinition[]): string[] {
  const warnings: string[] = [];
  for (const def of definitions) {
    if (!def.seriesLevel) continue;
    const others = definitions.filter((d) => d.type === def.type && d !== def).map((d) => `[${d.index}]`);
    if (others.length > 0)
      warnings.push(
        `definition[${def.index}] (type "${def.type}") is SeriesLevel and the type is also defined by definition${others.join(", ")}: ` +
          "when it fails it removes the type even if another definition matched; file order decides",
      );
  }
  return warnings;
}
