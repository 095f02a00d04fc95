import { UnrecoverableError } from "bullmq";
import nodemailer from "nodemailer";
import type { SubscriptionAction } from "../config.js";
import type { AutomationEvent } from "./event.js";

type EmailAction = Extract<SubscriptionAction, { type: "email" }>;

/** SMTP reply codes 5xx are permanent (bad recipient, relay refused, auth failed). */
const isPermanent = (e: unknown) => {
  const code = (e as { responseCode?: number }).responseCode;
  return typeof code === "number" && code >= 500 && code < 600;
};

/** Mail the event as text (the identifiers and the JSON). Returns the server's reply. */
export async function sendEmail(action: EmailAction, event: AutomationEvent): Promise<string> {
  const { smtp } = action;
  const pass = smtp.passwordEnv ? process.env[smtp.passwordEnv] : undefined;
  if (smtp.passwordEnv && pass === undefined)
    throw new UnrecoverableError(`environment variable ${smtp.passwordEnv} is not set`);
  const transport = nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    ...(smtp.user ? { auth: { user: smtp.user, pass: pass ?? "" } } : {}),
    connectionTimeout: action.timeoutMs,
    greetingTimeout: action.timeoutMs,
    socketTimeout: action.timeoutMs,
  });
  const lines = Object.entries(event.subject).map(([k, v]) => `${k}: ${v}`);
  try {
    const info = await transport.sendMail({
      from: smtp.from,
      to: action.to,
      subject: action.subject ?? `FIONA ${event.trigger} (${event.subscription})`,
      text: [`${event.trigger} at ${event.firedAt}`, ...lines, "", JSON.stringify(event, null, 2)].join("\n"),
    });
    return info.response;
  } catch (e) {
    const msg = `e-mail via ${smtp.host}:${smtp.port} failed: ${(e as Error).message}`;
    throw isPermanent(e) ? new UnrecoverableError(msg) : new Error(msg);
  } finally {
    transport.close();
  }
}
