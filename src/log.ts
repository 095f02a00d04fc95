import { pino, type Logger } from "pino";

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

export function createLogger(level = process.env.FIONA_LOG_LEVEL ?? "info", name = "fiona"): Logger {
  return pino({
    name,
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...PHI_FIELDS, ...PHI_FIELDS.map((f) => `*.${f}`)], remove: true },
  });
}

export const log = createLogger();
export type { Logger };
