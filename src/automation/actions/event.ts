import { UnrecoverableError } from "bullmq";
import type { AutomationJob } from "../../queues/index.js";

/** The JSON every action receives (webhook body, command stdin and FIONA_EVENT, e-mail text). */
export interface AutomationEvent {
  source: "fiona";
  subscription: string;
  trigger: string;
  firedAt: string;
  jobId: string;
  attempt: number;
  subject: AutomationJob["subject"];
}

export const automationEvent = (data: AutomationJob, jobId: string, attempt: number): AutomationEvent => ({
  source: "fiona",
  subscription: data.subscription,
  trigger: data.trigger,
  firedAt: data.firedAt,
  jobId,
  attempt,
  subject: data.subject,
});

const ENV_REF = /^\$ENV:([A-Za-z_][A-Za-z0-9_]*)$/;

/** A configured value, or the environment variable it names ("$ENV:NAME"); a missing one is permanent. */
export function resolveSecret(value: string, env: NodeJS.ProcessEnv = process.env): string {
  const m = ENV_REF.exec(value);
  if (!m) return value;
  const v = env[m[1]!];
  if (v === undefined) throw new UnrecoverableError(`environment variable ${m[1]} is not set`);
  return v;
}
