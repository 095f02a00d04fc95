export interface ArrivalFacts {
  nowMs: number;
  /** The study's last image received (or, when no receiver noted it, last ingested). */
  lastActivityMs: number;
  quietMs: number;
  /** An ingest job of the study is still waiting, delayed or active. */
  ingestPending: boolean;
  /** Something was ingested or reclassified since its last arrival. */
  changed: boolean;
  /** How soon to look again while ingest is behind. */
  pollMs: number;
}

export type ArrivalDecision =
  | { action: "fire" }
  | { action: "wait"; afterMs: number; reason: "not quiet" | "ingest pending" }
  | { action: "skip"; reason: "nothing new" };

/** Timer jitter allowance: a study quiet for quietMs minus this counts as quiet. */
const TOLERANCE_MS = 25;

/**
 * A study arrives once nothing was received for the quiet time, none of its ingest work is left, and
 * there is something to announce. Waits are capped at the quiet time, so a clock running ahead of
 * ours delays an arrival by no more than its lead.
 */
export function decideArrival(f: ArrivalFacts): ArrivalDecision {
  const quietFor = f.nowMs - f.lastActivityMs;
  if (quietFor < f.quietMs - TOLERANCE_MS) {
    return { action: "wait", afterMs: Math.min(f.quietMs, f.quietMs - quietFor), reason: "not quiet" };
  }
  if (f.ingestPending) return { action: "wait", afterMs: f.pollMs, reason: "ingest pending" };
  if (!f.changed) return { action: "skip", reason: "nothing new" };
  return { action: "fire" };
}
