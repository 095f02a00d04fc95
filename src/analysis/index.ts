/** Analysis jobs (issue #9): configuration, job folder, runtimes, result checks, triggers. */
export {
  analysisJobSchema,
  analysisSchema,
  RUNTIMES,
  type AnalysisConfig,
  type AnalysisJobConfig,
  type RuntimeName,
} from "./config.js";
export {
  buildInvocation,
  containerName,
  jobFolder,
  runInvocation,
  CONTAINER_PATHS,
  type Invocation,
  type JobFolder,
  type RunOutcome,
} from "./runtime.js";
export {
  checkOutput,
  readOutputJson,
  toImportRows,
  OutputJsonError,
  type InputUids,
  type OutputCheck,
  type ResultRow,
} from "./results.js";
export { selectSeries, seriesMatches, studySeries, conditionHolds } from "./select.js";
export {
  processAnalysis,
  jobDefinition,
  analysisWorkDir,
  type AnalysisDeps,
  type AnalysisResult,
  type SeriesDescriptor,
} from "./run.js";
export {
  analysisJobId,
  enqueueAnalysis,
  requestCancel,
  triggerAnalyses,
  type AnalysisQueue,
} from "./trigger.js";
