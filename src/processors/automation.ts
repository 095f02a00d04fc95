import type { Job } from "bullmq";
import { UnrecoverableError } from "bullmq";
import { automationEvent } from "../automation/actions/event.js";
import { runCommand } from "../automation/actions/command.js";
import { sendEmail } from "../automation/actions/email.js";
import { sendWebhook } from "../automation/actions/webhook.js";
import type { FionaConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import type { AutomationJob } from "../queues/index.js";
import type { Stage } from "./stage.js";

export interface AutomationDeps {
  cfg: FionaConfig;
  log: Logger;
}

/** Deliver one subscription's action for one trigger occurrence; a throw is retried with backoff. */
async function processAutomation(job: Job<AutomationJob>, deps: AutomationDeps) {
  const sub = deps.cfg.automation.subscriptions.find((s) => s.name === job.data.subscription);
  // Removed from the configuration since it fired: nothing to deliver to.
  if (!sub) throw new UnrecoverableError(`subscription ${job.data.subscription} is no longer configured`);
  const event = automationEvent(job.data, job.id ?? "", job.attemptsMade + 1);
  const action = sub.action;
  const started = Date.now();
  let status: number | undefined;
  if (action.type === "webhook") status = await sendWebhook(action, event);
  else if (action.type === "command") await runCommand(action, event);
  else await sendEmail(action, event);
  deps.log.info(
    {
      subscription: sub.name,
      trigger: job.data.trigger,
      action: action.type,
      status,
      ms: Date.now() - started,
    },
    "automation delivered",
  );
  return { action: action.type, ...(status !== undefined ? { status } : {}) };
}

export const automationProcessor: Stage<
  AutomationDeps,
  AutomationJob,
  Awaited<ReturnType<typeof processAutomation>>
> = (deps) => (job) => processAutomation(job, deps);
