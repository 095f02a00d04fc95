/**
 * Routing rules (FIONA's REDCap "Routing" table), pure.
 *
 * Semantics of populateIncoming.py, kept:
 * - a rule matches when (called AE == rule.calledAe OR calling AE == rule.callingAe)
 *   AND (PatientID matches rule.patientId OR PatientName matches rule.patientName);
 * - AE titles are compared for equality (after trimming blanks), case-sensitively; an empty or absent
 *   AE title in the rule never matches, so a rule needs at least one of the two;
 * - patient patterns are Python regular expressions applied with re.match: anchored at the start only
 *   (`PROJ` matches `PROJ_0001`; add `$` to anchor the end); an empty or absent pattern never matches;
 * - the participant is the PatientID when the ID pattern matched, else the PatientName (the whole
 *   value, not the matched part);
 * - the event is the rule's event, none when empty;
 * - every matching rule yields a request (requests with the same project, participant and event collapse).
 * Deviation: rules that are switched off (`active: false`) are skipped, as the original skipped rules
 * whose routing_active was not "1"; there is no REDCap dropdown label lookup (the project is its name).
 */
import { compilePythonRegex } from "../classify/pyregex.js";
import type { FionaConfig } from "../config/schema.js";

export interface RoutingRule {
  /** Shown in logs and the UI; not used for matching. */
  name?: string;
  active?: boolean;
  calledAe?: string;
  callingAe?: string;
  /** Python regular expression, re.match semantics. */
  patientId?: string;
  /** Python regular expression, re.match semantics. */
  patientName?: string;
  project: string;
  event?: string;
}

/** What routing looks at: from the series JSON on disk, never from Redis or job data. */
export interface StudyIdentity {
  calledAe?: string;
  callingAe?: string;
  patientId?: string;
  patientName?: string;
}

export interface RouteDecision {
  /** Index of the rule in the configured list. */
  rule: number;
  ruleName?: string;
  project: string;
  participant: string;
  event?: string;
  matched: { calledAe: boolean; callingAe: boolean; patientId: boolean; patientName: boolean };
}

const compiled = new Map<string, RegExp>();

/** Python re.match: true when the pattern matches at the start of value. Throws on an invalid pattern. */
export function pyMatch(pattern: string, value: string): boolean {
  let re = compiled.get(pattern);
  if (!re) {
    const base = compilePythonRegex(pattern);
    re = new RegExp(base.source, `${base.flags.replace(/[gy]/g, "")}y`);
    if (compiled.size > 1000) compiled.clear();
    compiled.set(pattern, re);
  }
  re.lastIndex = 0;
  return re.test(value);
}

/** Whether a Python pattern compiles here (for configuration checks). */
export function isValidPyPattern(pattern: string): boolean {
  try {
    compilePythonRegex(pattern);
    return true;
  } catch {
    return false;
  }
}

const aeEquals = (ruleAe: string | undefined, studyAe: string | undefined) => {
  const r = ruleAe?.trim() ?? "";
  return r !== "" && r === (studyAe ?? "").trim();
};

const patternMatches = (pattern: string | undefined, value: string | undefined) =>
  pattern !== undefined && pattern !== "" && pyMatch(pattern, value ?? "");

/** Evaluate one rule; undefined when it does not match. */
export function evaluateRule(rule: RoutingRule, study: StudyIdentity, index = 0): RouteDecision | undefined {
  if (rule.active === false) return undefined;
  const matched = {
    calledAe: aeEquals(rule.calledAe, study.calledAe),
    callingAe: aeEquals(rule.callingAe, study.callingAe),
    patientId: patternMatches(rule.patientId, study.patientId),
    patientName: patternMatches(rule.patientName, study.patientName),
  };
  if (!(matched.calledAe || matched.callingAe) || !(matched.patientId || matched.patientName))
    return undefined;
  const participant = matched.patientId ? (study.patientId ?? "") : (study.patientName ?? "");
  const event = rule.event?.trim() ? rule.event.trim() : undefined;
  return {
    rule: index,
    ...(rule.name !== undefined ? { ruleName: rule.name } : {}),
    project: rule.project,
    participant,
    ...(event !== undefined ? { event } : {}),
    matched,
  };
}

/** Every matching rule, in configuration order, duplicates (same project, participant, event) removed. */
export function evaluateRules(rules: readonly RoutingRule[], study: StudyIdentity): RouteDecision[] {
  const out: RouteDecision[] = [];
  const seen = new Set<string>();
  rules.forEach((rule, i) => {
    const d = evaluateRule(rule, study, i);
    if (!d) return;
    const key = [d.project, d.participant, d.event ?? ""].join("\0");
    if (seen.has(key)) return;
    seen.add(key);
    out.push(d);
  });
  return out;
}

/**
 * Cross-checks the schema cannot do on its own: rules and auto-ID settings that point at projects
 * that do not exist, auto-ID without a site secret, one auto-ID AE title used by two projects.
 */
export function routingConfigProblems(cfg: Pick<FionaConfig, "projects" | "routing" | "secret">): string[] {
  const problems: string[] = [];
  const names = new Set(cfg.projects.map((p) => p.name));
  cfg.routing.rules.forEach((r, i) => {
    if (!names.has(r.project)) problems.push(`routing.rules[${i}]: unknown project ${r.project}`);
    const p = cfg.projects.find((x) => x.name === r.project);
    if (p && r.event && p.events.length > 0 && !p.events.includes(r.event)) {
      problems.push(`routing.rules[${i}]: event ${r.event} is not one of project ${p.name}'s events`);
    }
  });
  const aes = new Map<string, string>();
  for (const p of cfg.projects) {
    if (!p.autoId) continue;
    if (!cfg.secret) problems.push(`project ${p.name}: autoId needs the site secret (config "secret")`);
    const other = aes.get(p.autoId.aeTitle);
    if (other)
      problems.push(`projects ${other} and ${p.name} use the same autoId AE title ${p.autoId.aeTitle}`);
    aes.set(p.autoId.aeTitle, p.name);
  }
  return problems;
}
