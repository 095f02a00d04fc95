/**
 * Failures that pass by themselves (space comes back, a connection is made again, a crashed worker's
 * job stalled), as their reasons read in BullMQ's failed set: worth running again, unlike a file that
 * cannot be parsed. The one list the reconciler retries by.
 */
const TRANSIENT_CODES = [
  "ENOSPC",
  "EDQUOT",
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "EMFILE",
  "ENFILE",
  "EAGAIN",
  "EBUSY",
  "ESTALE",
];

const TRANSIENT_MESSAGES = [
  "Connection is closed", // ioredis
  "job stalled more than allowable limit", // BullMQ: its worker died
  "Missing lock for job", // BullMQ: its worker lost the job's lock
  "timed out",
];

const TRANSIENT = new RegExp(
  `\\b(?:${TRANSIENT_CODES.join("|")})\\b|${TRANSIENT_MESSAGES.map((m) => m.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")}`,
  "i",
);

export function isTransientFailure(reason: string | undefined): boolean {
  return reason !== undefined && TRANSIENT.test(reason);
}
