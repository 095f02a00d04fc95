import type { TransferRecord, TransferRegistry } from "../../registry/transfers.js";

/** Transfer records read for the lists (the registry's newest). */
const MAX_TRANSFERS = 10_000;
const TTL_MS = 1500;

/**
 * Every transfer record, newest first. Pages poll every few seconds, so one snapshot serves all
 * requests for TTL_MS; writes through the API drop it.
 */
export class TransferSnapshot {
  private snapshot: { at: number; list: Promise<TransferRecord[]> } | undefined;

  constructor(private readonly transfers: TransferRegistry) {}

  all(): Promise<TransferRecord[]> {
    const now = Date.now();
    if (!this.snapshot || now - this.snapshot.at > TTL_MS) {
      const list = this.transfers.list(MAX_TRANSFERS);
      this.snapshot = { at: now, list };
      list.catch(() => (this.snapshot = undefined));
    }
    return this.snapshot.list;
  }

  changed(): void {
    this.snapshot = undefined;
  }
}
