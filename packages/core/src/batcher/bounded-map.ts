// A map with a size bound and an idle expiry, for state the engine keeps per credential or per
// resource (SPEC §8c, §8d: memory bounded whatever the upstream or the callers do). The oldest-touched
// entry goes first when the bound is reached; an entry untouched for `idleMs` (or past the later
// instant its last touch asked to be kept until) is gone at the next read or sweep.

export class BoundedMap<K, V> {
  /** Insertion order is touch order: a touched entry is re-inserted at the end. */
  readonly #entries = new Map<K, { value: V; expiresAt: number }>();

  constructor(
    readonly maxEntries: number,
    readonly idleMs: number,
    /** Called for every entry that leaves other than by `delete` (bound, expiry). */
    private readonly evicted: (key: K, value: V) => void = () => {},
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  /** The live value, without touching it. */
  peek(key: K, now: number): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (now < entry.expiresAt) return entry.value;
    this.#entries.delete(key);
    this.evicted(key, entry.value);
    return undefined;
  }

  /**
   * The live value, touched; `create`d (making room) when absent. `keepUntil`: not expired before
   * then even if untouched (a pause longer than `idleMs`); the bound may still evict it.
   */
  touch(key: K, now: number, create: () => V, keepUntil = 0): V {
    const value = this.peek(key, now) ?? create();
    const kept = this.#entries.get(key)?.expiresAt ?? 0;
    this.#entries.delete(key);
    this.#entries.set(key, { value, expiresAt: Math.max(now + this.idleMs, keepUntil, kept) });
    while (this.#entries.size > this.maxEntries) {
      const [oldest, entry] = this.#entries.entries().next().value as [K, { value: V }];
      this.#entries.delete(oldest);
      this.evicted(oldest, entry.value);
    }
    return value;
  }

  delete(key: K): void {
    this.#entries.delete(key);
  }

  /** Drops every expired entry, and every entry `forget` says is worth nothing. */
  sweep(now: number, forget: (value: V) => boolean = () => false): void {
    for (const [key, entry] of this.#entries) {
      if (now >= entry.expiresAt) {
        this.#entries.delete(key);
        this.evicted(key, entry.value);
      } else if (forget(entry.value)) this.#entries.delete(key);
    }
  }

  values(now: number): V[] {
    const live: V[] = [];
    for (const key of [...this.#entries.keys()]) {
      const value = this.peek(key, now);
      if (value !== undefined) live.push(value);
    }
    return live;
  }
}
