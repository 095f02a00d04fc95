interface Waiter<T, R> {
  item: T;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit per key: items submitted for a key while its handler runs are handed to the next run
 * as one batch, in submission order. One handler call per key at a time; every submitter's promise
 * settles with the result of the run that included its item.
 */
export class KeyedBatcher<T, R> {
  private readonly queued = new Map<string, Array<Waiter<T, R>>>();
  private readonly running = new Set<string>();

  constructor(private readonly handler: (key: string, items: T[]) => Promise<R>) {}

  submit(key: string, item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const list = this.queued.get(key);
      if (list) list.push({ item, resolve, reject });
      else this.queued.set(key, [{ item, resolve, reject }]);
      if (!this.running.has(key)) void this.run(key);
    });
  }

  private async run(key: string): Promise<void> {
    this.running.add(key);
    // Let items already in flight (other jobs' awaits resolving this tick) join the first batch.
    await new Promise((r) => setImmediate(r));
    for (let batch = this.take(key); batch.length; batch = this.take(key)) {
      try {
        const result = await this.handler(
          key,
          batch.map((w) => w.item),
        );
        for (const w of batch) w.resolve(result);
      } catch (e) {
        for (const w of batch) w.reject(e);
      }
    }
    this.running.delete(key);
  }

  private take(key: string): Array<Waiter<T, R>> {
    const list = this.queued.get(key) ?? [];
    this.queued.delete(key);
    return list;
  }
}
