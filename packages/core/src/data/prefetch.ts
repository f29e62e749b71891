/**
 * A prefetch queue over numbered items (batch k of a run): when item k is
 * taken, items k+1 .. k+depth are already being made, so the producer (a
 * worker thread) works while the consumer's step runs. It measures how long
 * the consumer waited for data, as a share of the time since its first call.
 */
export interface PrefetchStats {
  readonly items: number;
  /** Milliseconds spent waiting in get() for items that were not ready. */
  readonly waitedMs: number;
  /** Milliseconds from the first get() to the end of the last. */
  readonly spanMs: number;
  /** waitedMs / spanMs (0 before the first item). */
  readonly waitShare: number;
}

export class Prefetcher<T> {
  private readonly pending = new Map<number, { promise: Promise<T>; ready: boolean }>();
  private waited = 0;
  private first = -1;
  private last = -1;
  private count = 0;

  constructor(private readonly produce: (k: number) => Promise<T>, readonly depth = 2) {
    if (!(depth >= 0)) throw new Error('Prefetcher: depth >= 0');
  }

  private request(k: number): { promise: Promise<T>; ready: boolean } {
    let e = this.pending.get(k);
    if (!e) {
      const entry = { promise: this.produce(k), ready: false };
      entry.promise.then(
        () => (entry.ready = true),
        () => (entry.ready = true),
      );
      this.pending.set(k, entry);
      e = entry;
    }
    return e;
  }

  /** Item k; starts k+1 .. k+depth, and forgets items before k. */
  async get(k: number): Promise<T> {
    const t0 = performance.now();
    if (this.first < 0) this.first = t0;
    for (const key of this.pending.keys()) if (key < k || key > k + this.depth) this.pending.delete(key);
    const e = this.request(k);
    for (let j = 1; j <= this.depth; j++) this.request(k + j);
    this.pending.delete(k);
    try {
      if (e.ready) return await e.promise;
      const v = await e.promise;
      this.waited += performance.now() - t0;
      return v;
    } finally {
      this.count++;
      this.last = performance.now();
    }
  }

  /** Items already requested and not yet taken settle or fail unobserved. */
  clear(): void {
    for (const e of this.pending.values()) e.promise.catch(() => {});
    this.pending.clear();
  }

  stats(): PrefetchStats {
    const span = this.first < 0 ? 0 : this.last - this.first;
    return { items: this.count, waitedMs: this.waited, spanMs: span, waitShare: span > 0 ? Math.min(1, this.waited / span) : 0 };
  }
}
