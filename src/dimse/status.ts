/**
 * C-STORE response status classification (PS3.4 B.2.3, PS3.7 annex C).
 *
 * | Status | kind | retryable |
 * |---|---|---|
 * | 0x0000 | success | - |
 * | 0xBxxx (0xB000 coercion, 0xB006 elements discarded, 0xB007 dataset does not match SOP class), 0x0001, 0x0107, 0x0116 | warning (stored; log it) | - |
 * | 0xA7xx out of resources, 0x0213 resource limitation, 0xFE00 cancelled | failure | yes |
 * | 0x0122 SOP class not supported, 0xA9xx dataset does not match SOP class, 0xCxxx cannot understand, 0x0110, 0x0211, 0x0212, 0x0124 and every other status | failure | no |
 *
 * Outcomes decided locally, without a C-STORE-RSP (no accepted presentation context for the file's SOP
 * class and transfer syntax, unreadable file), carry status {@link NOT_SENT} (-1): permanent failures.
 */

export type OutcomeKind = "success" | "warning" | "failure";

export interface StoreOutcome {
  /** DIMSE status of the C-STORE-RSP, or NOT_SENT (-1) when the file was not sent. */
  status: number;
  kind: OutcomeKind;
  /** Only failures can be retryable. */
  retryable: boolean;
  /** Status meaning (and offending elements), or why the file was not sent. Never dataset values. */
  reason?: string;
  /** The peer's ErrorComment (0000,0902), verbatim: peer-written text, so do not log it at info level. */
  errorComment?: string;
}

/** Status of outcomes decided without a C-STORE-RSP. */
export const NOT_SENT = -1;

export function hex4(status: number): string {
  return `0x${status.toString(16).toUpperCase().padStart(4, "0")}`;
}

const MEANING: Record<number, string> = {
  0x0000: "success",
  0x0001: "warning: requested optional attributes are not supported",
  0x0107: "warning: attribute list error",
  0x0116: "warning: attribute value out of range",
  0xb000: "warning: coercion of data elements",
  0xb006: "warning: elements discarded",
  0xb007: "warning: data set does not match SOP class",
  0x0110: "processing failure",
  0x0111: "duplicate SOP instance",
  0x0117: "invalid SOP instance",
  0x0119: "class-instance conflict",
  0x0122: "refused: SOP class not supported",
  0x0124: "refused: not authorized",
  0x0210: "duplicate invocation",
  0x0211: "unrecognized operation",
  0x0212: "mistyped argument",
  0x0213: "resource limitation",
  0xfe00: "cancelled",
};

function describeStatus(status: number): string {
  const known = MEANING[status];
  if (known) return known;
  const high = status & 0xff00;
  if (high === 0xa700) return "refused: out of resources";
  if (high === 0xa900) return "error: data set does not match SOP class";
  if ((status & 0xf000) === 0xc000) return "error: cannot understand";
  if ((status & 0xf000) === 0xb000) return "warning";
  if ((status & 0xf000) === 0xa000) return "refused";
  return "unknown status";
}

export function classifyStatus(status: number): Pick<StoreOutcome, "kind" | "retryable"> {
  if (status === 0x0000) return { kind: "success", retryable: false };
  if ((status & 0xf000) === 0xb000 || status === 0x0001 || status === 0x0107 || status === 0x0116)
    return { kind: "warning", retryable: false };
  if ((status & 0xff00) === 0xa700 || status === 0x0213 || status === 0xfe00)
    return { kind: "failure", retryable: true };
  return { kind: "failure", retryable: false };
}

/** The outcome for a C-STORE-RSP status; `offending` are "(gggg,eeee)" tags from OffendingElement. */
export function outcomeForStatus(
  status: number,
  offending: string[] = [],
  errorComment?: string,
): StoreOutcome {
  const { kind, retryable } = classifyStatus(status);
  const outcome: StoreOutcome = { status, kind, retryable };
  if (kind !== "success") {
    outcome.reason = `${hex4(status)} ${describeStatus(status)}`;
    if (offending.length) outcome.reason += ` (offending elements ${offending.join(" ")})`;
  }
  if (errorComment) outcome.errorComment = errorComment;
  return outcome;
}
