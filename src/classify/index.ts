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
export { OPERATORS } from "./schema.js";
export { classify, evaluateEntry, type EntryOutcome } from "./evaluate.js";
export {
  explain,
  isPhiTag,
  REDACTED,
  type DefinitionExplanation,
  type EntryExplanation,
  type ExplainOptions,
} from "./explain.js";
export { formatTagPath, parseTagPath } from "./tagpath.js";
export { loadRulesFile, watchRules, type RulesWatch, type WatchOptions } from "./loader.js";
