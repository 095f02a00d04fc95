import { UnrecoverableError } from "bullmq";
import type { SubscriptionAction } from "../config.js";
import { resolveSecret, type AutomationEvent } from "./event.js";

type WebhookAction = Extract<SubscriptionAction, { type: "webhook" }>;

/** Statuses worth retrying besides 5xx. */
const RETRYABLE_4XX = new Set([408, 429]);

/** POST the event as JSON. Non-2xx throws (retried); other 4xx fail for good. Returns the status. */
export async function sendWebhook(action: WebhookAction, event: AutomationEvent): Promise<number> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  for (const [k, v] of Object.entries(action.headers)) headers[k.toLowerCase()] = resolveSecret(v);
  let res: Response;
  try {
    res = await fetch(action.url, {
      method: "POST",
      headers,
      body: JSON.stringify(event),
      signal: AbortSignal.timeout(action.timeoutMs),
    });
  } catch (e) {
    // The URL may carry a token in its query: report the host only.
    throw new Error(`webhook to ${new URL(action.url).host} failed: ${(e as Error).message}`);
  }
  await res.body?.cancel();
  if (res.ok) return res.status;
  const msg = `webhook to ${new URL(action.url).host} answered ${res.status}`;
  if (res.status >= 400 && res.status < 500 && !RETRYABLE_4XX.has(res.status))
    throw new UnrecoverableError(msg);
  throw new Error(msg);
}
