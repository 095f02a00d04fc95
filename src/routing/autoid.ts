/**
 * Participant-ID patterns for auto-ID (the gen-id tool of FIONA), pure.
 *
 * A pattern is a regular-expression-like template that describes every ID of a project, e.g.
 * `PROJ_[0-9]{4}` or `P_0\d{4}`. Supported:
 * - literal characters, and escaped ones (`\_`, `\.`, `\-`, `\(` …)
 * - character classes with ranges `[A-Z0-9]`, `[abc]` (one character per draw; negated classes are rejected)
 * - `\d` (0-9) and `.` (0-9, a-z, A-Z, as gen-id)
 * - groups with alternatives `(a|b)`, `(?:a|b)`, and back-references `\1` to a capturing group
 * - fixed repetition `{n}` of any atom
 * - a leading `^` and a trailing `$` (ignored: an ID is always the whole pattern)
 *
 * Variable repetition (`*`, `+`, `?`, `{m,n}`) is rejected: gen-id silently used the minimum count,
 * which is rarely what the pattern's author meant. `\s` is rejected (IDs with blanks are error-prone).
 *
 * Every ID is identified by an index in [0, size): `idAt(pattern, i)` is a bijection when the
 * alternatives of each group are distinct, so a uniform random index gives a uniform random ID and a
 * small space can be enumerated to find the IDs still free.
 */
import { randomBytes } from "node:crypto";

export class IdPatternError extends Error {
  override name = "IdPatternError";
}

type Atom =
  | { kind: "chars"; chars: string[] }
  | { kind: "group"; capture: number | undefined; alternatives: Item[][] }
  | { kind: "backref"; group: number };

interface Item {
  atom: Atom;
  count: number;
}

export interface IdPattern {
  source: string;
  items: Item[];
  /** Number of IDs the pattern describes (an upper bound when a group has overlapping alternatives). */
  size: bigint;
  /** Number of capturing groups. */
  groups: number;
}

const DIGITS = "0123456789".split("");
const DOT = [..."0123456789", ..."abcdefghijklmnopqrstuvwxyz", ..."ABCDEFGHIJKLMNOPQRSTUVWXYZ"];
/** Printable ASCII except backslash: what a participant ID may contain. */
const isIdChar = (c: string) => /^[\x20-\x5b\x5d-\x7e]$/.test(c);

/** Parse a pattern; throws IdPatternError naming the position of the problem. */
export function parseIdPattern(source: string): IdPattern {
  let body = source;
  if (body.startsWith("^")) body = body.slice(1);
  if (body.endsWith("$") && !body.endsWith("\\$")) body = body.slice(0, -1);
  const offset = source.startsWith("^") ? 1 : 0;
  let pos = 0;
  let groups = 0;
  const fail: (msg: string) => never = (msg) => {
    throw new IdPatternError(`ID pattern ${JSON.stringify(source)}, position ${pos + offset + 1}: ${msg}`);
  };

  const parseSeq = (inGroup: boolean): Item[][] => {
    const alternatives: Item[][] = [[]];
    while (pos < body.length) {
      const c = body[pos]!;
      if (c === ")") {
        if (!inGroup) fail("unbalanced ')'");
        break;
      }
      if (c === "|") {
        if (!inGroup) fail("alternatives need a group: write (a|b)");
        pos++;
        alternatives.push([]);
        continue;
      }
      const atom = parseAtom();
      const count = parseCount();
      alternatives[alternatives.length - 1]!.push({ atom, count });
    }
    return alternatives;
  };

  const parseAtom = (): Atom => {
    const c = body[pos]!;
    if (c === "(") {
      pos++;
      let capture: number | undefined;
      if (body.startsWith("?:", pos)) pos += 2;
      else if (body[pos] === "?") fail("only (…) and (?:…) groups are supported");
      else capture = ++groups;
      const alternatives = parseSeq(true);
      if (body[pos] !== ")") fail("missing ')'");
      pos++;
      return { kind: "group", capture, alternatives };
    }
    if (c === "[") return parseClass();
    if (c === ".") {
      pos++;
      return { kind: "chars", chars: DOT };
    }
    if (c === "\\") {
      const next = body[pos + 1];
      if (next === undefined) fail("pattern ends with a backslash");
      if (next === "d") {
        pos += 2;
        return { kind: "chars", chars: DIGITS };
      }
      if (/[1-9]/.test(next!)) {
        const n = Number(next);
        if (n > groups) fail(`back-reference \\${n} before group ${n} is closed`);
        pos += 2;
        return { kind: "backref", group: n };
      }
      if (/[a-zA-Z0-9]/.test(next!)) fail(`\\${next} is not supported (use \\d or a class such as [a-z])`);
      if (!isIdChar(next!)) fail("only printable ASCII characters can appear in an ID");
      pos += 2;
      return { kind: "chars", chars: [next!] };
    }
    if ("*+?".includes(c)) fail(`'${c}' is not supported: IDs have a fixed shape (use {n})`);
    if ("{}]".includes(c)) fail(`unexpected '${c}'`);
    if (!isIdChar(c)) fail("only printable ASCII characters without backslash can appear in an ID");
    pos++;
    return { kind: "chars", chars: [c] };
  };

  const parseClass = (): Atom => {
    pos++; // [
    if (body[pos] === "^") fail("negated classes [^…] are not supported");
    const set = new Set<string>();
    const readChar = (): string => {
      const c = body[pos];
      if (c === undefined) fail("missing ']'");
      if (c === "\\") {
        const next = body[pos + 1];
        if (next === undefined) fail("missing ']'");
        pos += 2;
        if (next === "d") return "\\d";
        if (/[a-zA-Z0-9]/.test(next!)) fail(`\\${next} is not supported inside a class`);
        return next!;
      }
      pos++;
      return c!;
    };
    let first = true;
    while (body[pos] !== "]" || first) {
      if (body[pos] === undefined) fail("missing ']'");
      first = false;
      const lo = readChar();
      if (lo === "\\d") {
        DIGITS.forEach((d) => set.add(d));
        continue;
      }
      if (body[pos] === "-" && body[pos + 1] !== "]" && body[pos + 1] !== undefined) {
        pos++;
        const hi = readChar();
        if (hi === "\\d") fail("a range cannot end in \\d");
        const a = lo.charCodeAt(0);
        const b = hi.charCodeAt(0);
        if (a > b) fail(`range ${lo}-${hi} is reversed`);
        for (let code = a; code <= b; code++) set.add(String.fromCharCode(code));
      } else set.add(lo);
    }
    pos++; // ]
    const chars = [...set].sort();
    if (chars.length === 0) fail("empty class");
    const bad = chars.find((ch) => !isIdChar(ch));
    if (bad !== undefined) fail("only printable ASCII characters without backslash can appear in an ID");
    return { kind: "chars", chars };
  };

  const parseCount = (): number => {
    const c = body[pos];
    if (c === "{") {
      const m = /^\{(\d+)\}/.exec(body.slice(pos));
      if (!m) fail("only fixed repetition {n} is supported");
      const n = Number(m![1]);
      if (n < 1 || n > 64) fail("repetition must be 1 to 64");
      pos += m![0].length;
      return n;
    }
    if (c !== undefined && "*+?".includes(c))
      fail(`'${c}' is not supported: IDs have a fixed shape (use {n})`);
    return 1;
  };

  if (body === "") fail("empty pattern");
  const top = parseSeq(false);
  if (pos < body.length) fail("unexpected ')'");
  const items = top[0]!;
  const pattern: IdPattern = { source, items, size: seqSize(items), groups };
  const [shortest, longest] = lengthRange(items, new Map());
  if (shortest < 1) fail("the pattern can produce an empty ID");
  if (longest > 64) fail(`IDs can be up to ${longest} characters; at most 64 are allowed`);
  return pattern;
}

function atomSize(atom: Atom): bigint {
  if (atom.kind === "chars") return BigInt(atom.chars.length);
  if (atom.kind === "backref") return 1n;
  return atom.alternatives.reduce((sum, alt) => sum + seqSize(alt), 0n);
}

function seqSize(items: Item[]): bigint {
  return items.reduce((p, it) => p * atomSize(it.atom) ** BigInt(it.count), 1n);
}

/** [shortest, longest] length of the IDs of a sequence; `caps` holds the ranges of closed groups. */
function lengthRange(items: Item[], caps: Map<number, [number, number]>): [number, number] {
  let lo = 0;
  let hi = 0;
  for (const { atom, count } of items) {
    let a: [number, number];
    if (atom.kind === "chars") a = [1, 1];
    else if (atom.kind === "backref") a = caps.get(atom.group) ?? [0, 0];
    else {
      const ranges = atom.alternatives.map((alt) => lengthRange(alt, caps));
      a = [Math.min(...ranges.map((r) => r[0])), Math.max(...ranges.map((r) => r[1]))];
      if (atom.capture !== undefined) caps.set(atom.capture, a);
    }
    lo += a[0] * count;
    hi += a[1] * count;
  }
  return [lo, hi];
}

/** The ID with this index (0 <= index < size). */
export function idAt(pattern: IdPattern, index: bigint): string {
  if (index < 0n || index >= pattern.size) throw new RangeError("index outside the pattern's space");
  const caps = new Map<number, string>();
  let rest = index;
  const seq = (items: Item[]): string => {
    let out = "";
    for (const { atom, count } of items) {
      for (let k = 0; k < count; k++) out += one(atom);
    }
    return out;
  };
  const one = (atom: Atom): string => {
    if (atom.kind === "backref") return caps.get(atom.group) ?? "";
    const size = atomSize(atom);
    let digit = rest % size;
    rest /= size;
    if (atom.kind === "chars") return atom.chars[Number(digit)]!;
    for (const alt of atom.alternatives) {
      const s = seqSize(alt);
      if (digit < s) {
        // Decode the alternative from its own digit, then continue with what is left of `rest`.
        const saved = rest;
        rest = digit;
        const text = seq(alt);
        rest = saved;
        if (atom.capture !== undefined) caps.set(atom.capture, text);
        return text;
      }
      digit -= s;
    }
    throw new Error("unreachable: digit outside the group");
  };
  return seq(pattern.items);
}

/** A uniform random integer in [0, n) from the system CSPRNG. */
function randomBelow(n: bigint): bigint {
  if (n <= 0n) throw new RangeError("n must be positive");
  const bits = n.toString(2).length;
  const bytes = Math.ceil(bits / 8);
  const mask = (1n << BigInt(bits)) - 1n;
  for (;;) {
    const v = BigInt(`0x${randomBytes(bytes).toString("hex")}`) & mask;
    if (v < n) return v;
  }
}

/** A uniformly random ID of the pattern. */
export function randomId(pattern: IdPattern): string {
  return idAt(pattern, randomBelow(pattern.size));
}

/** Every distinct ID of a (small) pattern, in index order. */
export function allIds(pattern: IdPattern, limit = 1_000_000): string[] {
  if (pattern.size > BigInt(limit)) throw new RangeError(`pattern space ${pattern.size} exceeds ${limit}`);
  const seen = new Set<string>();
  for (let i = 0n; i < pattern.size; i++) seen.add(idAt(pattern, i));
  return [...seen];
}
