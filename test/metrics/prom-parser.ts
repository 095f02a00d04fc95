/** A strict parser of the Prometheus text format 0.0.4, for tests: throws on anything malformed. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
export interface Family {
  name: string;
  type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  help: string;
  samples: Sample[];
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL = `([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\\\\n]|\\\\[\\\\"n])*)"`;
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*)?\\})? (\\S+)$`);
const VALUE = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)$/;

function parseValue(v: string): number {
  if (!VALUE.test(v)) throw new Error(`bad sample value ${v}`);
  return v === "+Inf" ? Infinity : v === "-Inf" ? -Infinity : Number(v);
}

/** The family a sample belongs to (histogram samples carry a _bucket/_sum/_count suffix). */
function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  if (families.has(name)) return families.get(name);
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  const f = m ? families.get(m[1]!) : undefined;
  return f && (f.type === "histogram" || f.type === "summary") ? f : undefined;
}

export function parsePrometheus(text: string): Map<string, Family> {
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline");
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  let helpFor: string | undefined;
  for (const [i, line] of text.slice(0, -1).split("\n").entries()) {
    const where = `line ${i + 1}: ${line}`;
    if (line === "") throw new Error(`${where}: empty line`);
    let m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line);
    if (m) {
      if (families.has(m[1]!)) throw new Error(`${where}: family declared twice`);
      helpFor = m[1]!;
      continue;
    }
    m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line);
    if (m) {
      if (m[1] !== helpFor) throw new Error(`${where}: TYPE without HELP just before`);
      families.set(m[1]!, { name: m[1]!, type: m[2] as Family["type"], help: "", samples: [] });
      continue;
    }
    if (line.startsWith("#")) throw new Error(`${where}: unexpected comment`);
    m = SAMPLE.exec(line);
    if (!m) throw new Error(`${where}: not a sample line`);
    const name = m[1]!;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(new RegExp(LABEL, "g"))) {
      if (l[1]! in labels) throw new Error(`${where}: duplicate label ${l[1]}`);
      labels[l[1]!] = l[2]!.replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
    }
    const fam = familyOf(name, families);
    if (!fam) throw new Error(`${where}: sample without a declared family`);
    if (fam.type === "counter" && !name.endsWith("_total"))
      throw new Error(`${where}: counter without _total`);
    const key = `${name}${JSON.stringify(labels)}`;
    if (seen.has(key)) throw new Error(`${where}: duplicate sample`);
    seen.add(key);
    fam.samples.push({ name, labels, value: parseValue(m[m.length - 1]!) });
  }
  for (const f of families.values()) if (f.type === "histogram") checkHistogram(f);
  return families;
}

/** Buckets ascend in le, are cumulative, end with +Inf equal to _count, and _sum exists per series. */
function checkHistogram(f: Family) {
  const series = new Map<string, Sample[]>();
  const rest = (l: Record<string, string>) => JSON.stringify(Object.entries(l).filter(([k]) => k !== "le"));
  for (const s of f.samples) {
    const k = rest(s.labels);
    (series.get(k) ?? series.set(k, []).get(k)!).push(s);
  }
  for (const [k, samples] of series) {
    const buckets = samples.filter((s) => s.name === `${f.name}_bucket`);
    const sum = samples.filter((s) => s.name === `${f.name}_sum`);
    const count = samples.filter((s) => s.name === `${f.name}_count`);
    if (sum.length !== 1 || count.length !== 1)
      throw new Error(`${f.name}${k}: needs one _sum and one _count`);
    if (!buckets.length || buckets.at(-1)!.labels.le !== "+Inf")
      throw new Error(`${f.name}${k}: last bucket not +Inf`);
    let le = -Infinity;
    let n = 0;
    for (const b of buckets) {
      const bound = b.labels.le === "+Inf" ? Infinity : Number(b.labels.le);
      if (!(bound > le)) throw new Error(`${f.name}${k}: le not ascending`);
      if (b.value < n) throw new Error(`${f.name}${k}: buckets not cumulative`);
      le = bound;
      n = b.value;
    }
    if (n !== count[0]!.value)
      throw new Error(`${f.name}${k}: +Inf bucket ${n} != _count ${count[0]!.value}`);
    if (sum[0]!.value < 0) throw new Error(`${f.name}${k}: negative _sum`);
  }
}

/** The value of one sample, by name and labels. */
export function sampleValue(fams: Map<string, Family>, name: string, labels: Record<string, string> = {}) {
  for (const f of fams.values())
    for (const s of f.samples)
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
  return undefined;
}
