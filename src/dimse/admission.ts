/**
 * Admission control for a DICOM listener, decided before a byte of a new connection is read: at most
 * `maxConnectionsPerPeer` connections per remote address and `maxConnections` in all. When full, the
 * oldest connection still negotiating, from the address holding the most, makes room (one slow or
 * hostile host cannot lock the others out); when every connection is associated, the new one is refused.
 */
import type net from "node:net";
import type { Logger } from "pino";

export interface AdmissionLimits {
  maxConnections: number;
  maxConnectionsPerPeer: number;
}

/** A connection as admission control sees it. */
export interface Admitted {
  readonly peer: string;
  /** Still without an accepted association: may be evicted. */
  readonly negotiating: boolean;
  /** Close it to make room. */
  evict(reason: string): void;
}

/** The remote address of a socket, IPv4-mapped IPv6 addresses as plain IPv4. */
export const peerAddress = (socket: net.Socket) => (socket.remoteAddress ?? "").replace(/^::ffff:/, "");

type Limit = "maxConnectionsPerPeer" | "maxConnections";

export class Admission<T extends Admitted> {
  /** Oldest first (Set order). */
  private readonly entries = new Set<T>();
  private readonly perPeer = new Map<string, number>();
  private readonly warn: (fields: Record<string, unknown>) => void;
  /** Connections refused so far (for metrics). */
  refused = 0;

  constructor(
    private readonly limits: AdmissionLimits,
    log: Logger,
  ) {
    this.warn = rateLimitedWarn(log, "connection-refused", "connection refused by admission control");
  }

  /**
   * Why a new connection from `peer` is refused (after evicting one if that makes room), else
   * undefined. A refusal is counted and logged; the caller closes the socket.
   */
  refusal(peer: string): Limit | undefined {
    let why: Limit | undefined;
    if ((this.perPeer.get(peer) ?? 0) >= this.limits.maxConnectionsPerPeer) why = "maxConnectionsPerPeer";
    else if (this.entries.size >= this.limits.maxConnections && !this.evictOne()) why = "maxConnections";
    if (why !== undefined) this.refuse(peer, why);
    return why;
  }

  /** Count and log a refusal decided elsewhere (TLS handshakes in progress). */
  refuse(peer: string, limit: Limit): void {
    this.refused++;
    this.warn({ peer, limit });
  }

  /** Track an admitted connection until its socket closes. */
  add(entry: T, socket: net.Socket): void {
    this.entries.add(entry);
    this.perPeer.set(entry.peer, (this.perPeer.get(entry.peer) ?? 0) + 1);
    socket.once("close", () => this.remove(entry));
  }

  /** Connections admitted from `peer` and still open. */
  count(peer: string): number {
    return this.perPeer.get(peer) ?? 0;
  }

  all(): T[] {
    return [...this.entries];
  }

  private remove(entry: T): void {
    if (!this.entries.delete(entry)) return;
    const n = (this.perPeer.get(entry.peer) ?? 1) - 1;
    if (n <= 0) this.perPeer.delete(entry.peer);
    else this.perPeer.set(entry.peer, n);
  }

  private evictOne(): boolean {
    let victim: T | undefined;
    for (const e of this.entries) {
      if (!e.negotiating) continue;
      if (victim === undefined || (this.perPeer.get(e.peer) ?? 0) > (this.perPeer.get(victim.peer) ?? 0))
        victim = e;
    }
    if (victim === undefined) return false;
    this.remove(victim);
    victim.evict("connection limit reached: oldest negotiating connection closed");
    return true;
  }
}

/** Logs one event per kind at most every 10 s, with how many were folded into it (floods stay readable). */
export function rateLimitedWarn(log: Logger, event: string, message: string) {
  let last = 0;
  let suppressed = 0;
  return (fields: Record<string, unknown>) => {
    const now = Date.now();
    if (now - last < 10_000) {
      suppressed++;
      return;
    }
    log.warn({ event, ...fields, ...(suppressed > 0 && { suppressed }) }, message);
    last = now;
    suppressed = 0;
  };
}
