import type { FionaConfig } from "../config/schema.js";
import { classify, explain, loadRulesFile, type DefinitionExplanation } from "../classify/index.js";
import { readHeaderFile } from "../dicom/header.js";
import { summarizeFile } from "../ingest/series-summary.js";
import { DEFAULT_RULES_FILE } from "../roles/workers.js";

/** `fiona rules test <file>`: which types match this file and why (PHI redacted unless asked). */
export async function rulesTest(cfg: FionaConfig, file: string, o: { rules?: string; showPhi?: boolean }) {
  const rules = await loadRulesFile(o.rules ?? cfg.classify.rulesFile ?? DEFAULT_RULES_FILE);
  const header = await readHeaderFile(file);
  const series = summarizeFile(header, { callingAe: "", calledAe: "", peer: "" });
  const report = explain(rules, series, header, [], { redactPhi: !o.showPhi });
  console.log(`ClassifyType: ${JSON.stringify(classify(rules, series, header, []))}`);
  for (const line of explanationLines(report)) console.log(line);
}

/**
 * One line per definition and per check. A negated check reads "not <operator>" (it passes when the
 * operator does not hold), and a check copied by rule/notrule says where from.
 */
export function explanationLines(report: DefinitionExplanation[]): string[] {
  return report.flatMap((d) => [
    `${d.matched ? "MATCH" : "  no "} ${d.type}${d.id ? ` (${d.id})` : ""}`,
    ...d.entries.map(
      (e) =>
        `        ${e.pass ? "pass" : "FAIL"} ${e.tag} ${e.negate ? "not " : ""}${e.operator} ` +
        `${JSON.stringify(e.expected)} <- ${JSON.stringify(e.value)}` +
        (e.from !== undefined ? ` (from ${e.from})` : "") +
        (e.note !== undefined ? ` (${e.note})` : ""),
    ),
  ]);
}
