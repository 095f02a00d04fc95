import { z } from "zod";

const triggerSchema = z.discriminatedUnion("type", [
  z
    .object({
      type: z.literal("study-arrived"),
      project: z.string().min(1).optional(),
      calledAe: z.string().min(1).optional(),
    })
    .strict(),
  z.object({ type: z.literal("transfer-done"), project: z.string().min(1).optional() }).strict(),
  z.object({ type: z.literal("transfer-failed"), project: z.string().min(1).optional() }).strict(),
  z.object({ type: z.literal("disk-above"), percent: z.number().min(1).max(100).optional() }).strict(),
  z.object({ type: z.literal("heartbeat-failing") }).strict(),
]);

const actionSchema = z.discriminatedUnion("type", [
  z
    .object({
      type: z.literal("webhook"),
      url: z.string().url(),
      /** Values of the form "$ENV:NAME" are read from the environment when sent; never logged. */
      headers: z.record(z.string()).default({}),
      timeoutMs: z.number().int().positive().default(10_000),
    })
    .strict(),
  z
    .object({
      type: z.literal("email"),
      to: z.array(z.string().email()).min(1),
      subject: z.string().optional(),
      smtp: z
        .object({
          host: z.string().min(1),
          port: z.number().int().positive().default(25),
          secure: z.boolean().default(false),
          user: z.string().optional(),
          /** Name of the environment variable that holds the SMTP password. */
          passwordEnv: z.string().optional(),
          from: z.string().email(),
        })
        .strict(),
      timeoutMs: z.number().int().positive().default(30_000),
    })
    .strict(),
  z
    .object({
      type: z.literal("command"),
      argv: z.array(z.string().min(1)).min(1),
      timeoutMs: z.number().int().positive().default(60_000),
    })
    .strict(),
]);

export const subscriptionSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "letters, digits, _ . - only"),
    trigger: triggerSchema,
    action: actionSchema,
    /** Delivery attempts (overrides the automation queue's default of 6). */
    attempts: z.number().int().min(1).max(50).optional(),
  })
  .strict()
  .refine((s) => s.trigger.type !== "study-arrived" || !!(s.trigger.project ?? s.trigger.calledAe), {
    message: "a study-arrived trigger needs a project or calledAe filter",
    path: ["trigger"],
  });

/** Event automation: trigger/action subscriptions (src/automation). */
export const automationSchema = z
  .object({ subscriptions: z.array(subscriptionSchema).default([]) })
  .strict()
  .refine((a) => new Set(a.subscriptions.map((s) => s.name)).size === a.subscriptions.length, {
    message: "automation.subscriptions names must be unique",
  });

export type Subscription = z.infer<typeof subscriptionSchema>;
export type SubscriptionTrigger = Subscription["trigger"];
export type SubscriptionAction = Subscription["action"];
