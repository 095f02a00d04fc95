import { z } from "zod";

/** Event automation: trigger/action subscriptions (src/automation). */
export const automationSchema = z.object({}).strict();
