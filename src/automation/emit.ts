import type { FionaConfig } from "../config/schema.js";
import type { TypedQueue } from "../queues/index.js";
import {
  automationJobId,
  jobData,
  matchingSubscriptions,
  occurrenceKey,
  triggerFor,
  type AutomationTrigger,
} from "./match.js";

export type { AutomationTrigger } from "./match.js";

/**
 * Enqueue one `automation` job per matching subscription; returns how many.
 * `occurrence` tells repeated occurrences apart (e.g. the arrival number or the transfer run);
 * the same trigger with the same occurrence enqueues nothing new.
 */
export async function emitAutomation(
  cfg: FionaConfig,
  queue: TypedQueue<"automation">,
  trigger: AutomationTrigger,
  occurrence?: string,
): Promise<number> {
  const subs = matchingSubscriptions(cfg.automation.subscriptions, trigger);
  if (subs.length === 0) return 0;
  const now = new Date();
  await queue.addBulk(
    subs.map((sub) => {
      const seen = triggerFor(sub, trigger);
      return {
        name: trigger.type,
        data: jobData(sub, seen, now),
        opts: {
          jobId: automationJobId(sub.name, occurrenceKey(seen, now, occurrence)),
          ...(sub.attempts ? { attempts: sub.attempts } : {}),
        },
      };
    }),
  );
  return subs.length;
}

/** What a stage needs to emit automation triggers. */
export interface AutomationSink {
  cfg: FionaConfig;
  queue: TypedQueue<"automation">;
}
