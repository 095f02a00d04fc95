export {
  compileRules,
  RulesError,
  type CompiledDefinition,
  type CompiledEntry,
  type CompiledRules,
  type Expected,
  type Operator,
  type RuleValue,
  type TagPath,
} from "./rules.js";
export { classify, type EntryOutcome } from "./evaluate.js";
export {
  explain,
  isPhiTag,
  REDACTED,
  type DefinitionExplanation,
  type EntryExplanation,
  type ExplainOptions,
} from "./explain.js";
export { parseTagPath } from "./tagpath.js";
export { loadRulesFile, watchRules, type RulesWatch, type WatchOptions } from "./loader.js";
