import type { TagSource, TagValue } from "../dicom/header.js";

/**
 * Where a rule reads its value:
 * - 1 element ["Name"]: series JSON field first, then DICOM keyword
 * - 2 elements ["0x08","0x70"]: top-level element
 * - 3 elements ["0x43","0x1039","0"]: one value of a multi-valued element
 * - 4 / 6 elements: item 0 of one / two sequences, then the element
 */
export type TagPath =
  | { kind: "name"; name: string }
  | { kind: "tag"; group: number; element: number; index?: number }
  | { kind: "nested"; path: Array<[number, number]> };

/** What a path resolved to in one file; value is "" when absent, as in the original. */
export interface Resolved {
  present: boolean;
  value: unknown;
}

export interface TagContext {
  series: Record<string, unknown>;
  ds: TagSource;
  /** ClassifyType as loaded before this file; rules on ["ClassifyType"] see this. */
  previous: readonly string[];
}

const HEX_RE = /^0x[0-9a-f]{1,4}$/i;
const INDEX_RE = /^(0|[1-9][0-9]*|0x[0-9a-f]+)$/i;

function hex(part: string, what: string): number {
  // Decimal groups (which Python's int(x, 0) accepted) are refused: "10" would silently mean 0x0A.
  if (!HEX_RE.test(part)) throw new Error(`${what} "${part}" must be hex with a 0x prefix, e.g. "0x0008"`);
  return Number.parseInt(part.slice(2), 16);
}

/** Parse a rule's tag array; throws with a message naming the bad part. */
export function parseTagPath(parts: readonly string[]): TagPath {
  switch (parts.length) {
    case 1:
      if (parts[0]!.trim() === "") throw new Error("tag name is empty");
      return { kind: "name", name: parts[0]! };
    case 2:
      return { kind: "tag", group: hex(parts[0]!, "group"), element: hex(parts[1]!, "element") };
    case 3: {
      const idx = parts[2]!;
      if (!INDEX_RE.test(idx)) throw new Error(`index "${idx}" must be a non-negative integer`);
      return {
        kind: "tag",
        group: hex(parts[0]!, "group"),
        element: hex(parts[1]!, "element"),
        index: Number(idx),
      };
    }
    case 4:
    case 6: {
      const path: Array<[number, number]> = [];
      for (let i = 0; i < parts.length; i += 2)
        path.push([hex(parts[i]!, "group"), hex(parts[i + 1]!, "element")]);
      return { kind: "nested", path };
    }
    default:
      throw new Error(`tag has ${parts.length} elements; expected 1, 2, 3, 4 or 6`);
  }
}

const h4 = (n: number) => n.toString(16).toUpperCase().padStart(4, "0");
const pair = ([g, e]: [number, number]) => `(${h4(g)},${h4(e)})`;

export function formatTagPath(path: TagPath): string {
  if (path.kind === "name") return path.name;
  if (path.kind === "tag") {
    const base = pair([path.group, path.element]);
    return path.index === undefined ? base : `${base}[${path.index}]`;
  }
  return path.path.map(pair).join(">");
}

const absent: Resolved = { present: false, value: "" };

function fromDataset(v: TagValue | undefined): Resolved {
  return v === undefined ? absent : { present: true, value: v };
}

export function resolveTag(path: TagPath, ctx: TagContext): Resolved {
  if (path.kind === "name") {
    if (path.name === "ClassifyType") return { present: true, value: [...ctx.previous] };
    const field = Object.hasOwn(ctx.series, path.name) ? ctx.series[path.name] : undefined;
    if (field !== undefined && field !== null) return { present: true, value: field };
    return fromDataset(ctx.ds.keyword(path.name));
  }
  if (path.kind === "nested") return fromDataset(ctx.ds.nested(path.path));
  const v = ctx.ds.tag(path.group, path.element);
  if (path.index === undefined || v === undefined) return fromDataset(v);
  // A single value only has index 0 (Python indexed into the string itself, e.g. its first character).
  if (!Array.isArray(v)) return path.index === 0 ? { present: true, value: v } : absent;
  return fromDataset(v[path.index]);
}
