/**
 * Collapses bursts of the same event (a reconnect loop, a library printing in a loop): the first
 * occurrence of a key is passed on at once, repeats are counted and passed on as one summary per
 * window while they go on. A key quiet for a whole window is forgotten, so it is reported at once
 * when it comes back.
 */
export interface RepeatLimiterOptions<D> {
  windowMs: number;
  /** Distinct keys tracked at once; further keys share one entry, so memory stays bounded. */
  maxKeys?: number;
  first(key: string, detail: D): void;
  repeated(key: string, count: number, details: D[]): void;
}

interface Entry<D> {
  repeats: number;
  details: Set<D>;
  /** When this key last produced a line (ms). */
  lastLine: number;
}

const OTHER_KEY = "(other messages)";

export class RepeatLimiter<D> {
  private readonly entries = new Map<string, Entry<D>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: RepeatLimiterOptions<D>) {}

  note(key: string, detail: D): void {
    const k = this.entries.has(key) || this.entries.size < (this.opts.maxKeys ?? 100) ? key : OTHER_KEY;
    const entry = this.entries.get(k);
    if (entry) {
      entry.repeats++;
      entry.details.add(detail);
      return;
    }
    this.entries.set(k, { repeats: 0, details: new Set(), lastLine: Date.now() });
    this.opts.first(k, detail);
    // Ticks finer than the window, so a summary is at most a fifth of a window late.
    this.timer ??= setInterval(() => this.tick(), this.opts.windowMs / 5).unref();
  }

  /** Pass on every pending summary now and forget every key (e.g. once the cause is gone). */
  reset(): void {
    for (const [key, entry] of this.entries) this.summarise(key, entry);
    this.entries.clear();
    this.stopTimer();
  }

  private tick(now = Date.now()): void {
    for (const [key, entry] of this.entries) {
      if (now - entry.lastLine < this.opts.windowMs) continue;
      if (entry.repeats === 0) this.entries.delete(key);
      else this.summarise(key, entry, now);
    }
    if (this.entries.size === 0) this.stopTimer();
  }

  private summarise(key: string, entry: Entry<D>, now = Date.now()): void {
    if (entry.repeats === 0) return;
    this.opts.repeated(key, entry.repeats, [...entry.details]);
    entry.repeats = 0;
    entry.details.clear();
    entry.lastLine = now;
  }

  private stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
