import { AsyncLocalStorage } from "node:async_hooks";
import { pino, type DestinationStream, type Logger, type LoggerOptions } from "pino";

/**
 * Field names that may carry patient identity. Pino removes them wherever they appear, as a net under
 * the rule that callers never log PHI in the first place.
 */
const PHI_FIELDS = [
  "PatientName",
  "PatientID",
  "PatientBirthDate",
  "AccessionNumber",
  "OtherPatientIDs",
  "patientName",
  "patientId",
  "accessionNumber",
];

/** Request or job ids added to every log line written inside withLogContext (web requests, jobs). */
const logContext = new AsyncLocalStorage<Record<string, string>>();

/** Run fn with these fields on every log line it (and whatever it awaits) writes. */
export const withLogContext = <T>(fields: Record<string, string>, fn: () => T): T =>
  logContext.run({ ...logContext.getStore(), ...fields }, fn);

export function createLogger(
  level = process.env.FIONA_LOG_LEVEL ?? "info",
  name = "fiona",
  destination?: DestinationStream,
): Logger {
  const options: LoggerOptions = {
    name,
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    mixin: () => logContext.getStore() ?? {},
    redact: { paths: [...PHI_FIELDS, ...PHI_FIELDS.map((f) => `*.${f}`)], remove: true },
  };
  return destination ? pino(options, destination) : pino(options);
}

export const log = createLogger();
export type { Logger };
