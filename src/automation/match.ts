import { createHash } from "node:crypto";
import type { AutomationJob } from "../queues/index.js";
import type { Subscription } from "./config.js";

/** What happened, as the stages report it. Identifiers only, never PHI. */
export type AutomationTrigger =
  | { type: "study-arrived"; studyInstanceUid: string; project?: string; calledAe: string; callingAe: string }
  | {
      type: "transfer-done" | "transfer-failed";
      requestId: string;
      project: string;
      studyInstanceUid: string;
      error?: string;
    }
  | { type: "disk-above"; percent: number; threshold: number; path: string }
  | { type: "heartbeat-failing"; consecutiveFailures: number };

/** Whether a subscription's trigger filter matches this occurrence. */
function matches(sub: Subscription["trigger"], t: AutomationTrigger): boolean {
  if (sub.type !== t.type) return false;
  switch (t.type) {
    case "study-arrived": {
      const s = sub as Extract<Subscription["trigger"], { type: "study-arrived" }>;
      return (
        (s.project === undefined || s.project === t.project) &&
        (s.calledAe === undefined || s.calledAe === t.calledAe)
      );
    }
    case "transfer-done":
    case "transfer-failed": {
      const s = sub as Extract<Subscription["trigger"], { type: "transfer-done" | "transfer-failed" }>;
      return s.project === undefined || s.project === t.project;
    }
    case "disk-above": {
      const s = sub as Extract<Subscription["trigger"], { type: "disk-above" }>;
      return t.percent >= (s.percent ?? t.threshold);
    }
    case "heartbeat-failing":
      return true;
  }
}

/** Subscriptions that fire for this occurrence. */
export const matchingSubscriptions = (subs: readonly Subscription[], t: AutomationTrigger): Subscription[] =>
  subs.filter((s) => matches(s.trigger, t));

/**
 * The occurrence as one subscription sees it: a study-arrived subscription that does not filter on a
 * project sees the arrival without the project, so a study routed to several projects fires it once.
 */
export function triggerFor(sub: Subscription, t: AutomationTrigger): AutomationTrigger {
  if (t.type !== "study-arrived" || sub.trigger.type !== "study-arrived" || sub.trigger.project) return t;
  const { project: _project, ...arrival } = t;
  return arrival;
}

const MAX_ERROR_CHARS = 500;

/** The job payload: the trigger's identifiers without its type (errors shortened). */
export function jobData(sub: Subscription, t: AutomationTrigger, firedAt: Date): AutomationJob {
  const subject: AutomationJob["subject"] = {};
  for (const [k, v] of Object.entries(t))
    if (k !== "type" && v !== undefined)
      subject[k] = k === "error" ? String(v).slice(0, MAX_ERROR_CHARS) : (v as string | number);
  return { subscription: sub.name, trigger: t.type, firedAt: firedAt.toISOString(), subject };
}

/**
 * What makes an occurrence unique, so a retried stage does not fire twice. Disk and heartbeat
 * triggers fire at most once per UTC hour per subscription unless the caller passes an occurrence.
 */
export function occurrenceKey(t: AutomationTrigger, firedAt: Date, occurrence?: string): string {
  const hour = firedAt.toISOString().slice(0, 13);
  const base =
    t.type === "study-arrived"
      ? [t.studyInstanceUid, t.project ?? "", t.calledAe]
      : t.type === "transfer-done" || t.type === "transfer-failed"
        ? [t.requestId]
        : t.type === "disk-above"
          ? [t.path, String(t.threshold), occurrence === undefined ? hour : ""]
          : [occurrence === undefined ? hour : ""];
  return [t.type, ...base, occurrence ?? ""].join("\u0000");
}

/** BullMQ job id for one subscription and one occurrence (hashed: ids may not contain ':'). */
export const automationJobId = (sub: string, key: string): string =>
  `${sub}-${createHash("sha256").update(key).digest("hex").slice(0, 24)}`;
