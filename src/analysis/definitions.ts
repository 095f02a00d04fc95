import type { FionaConfig } from "../config/schema.js";
import type { AnalysisJobConfig } from "./config.js";

export function jobDefinitionOrUndefined(cfg: FionaConfig, name: string): AnalysisJobConfig | undefined {
  return cfg.analysis.jobs.find((j) => j.name === name);
}
