// A map with a size bound and an idle expiry, for state the engine keeps per credential or per
// resource (SPEC §8c, §8d: memory bounded whatever the upstream or the callers do). The oldest-touched
// entry goes first when the bound is reached; an entry untouched for `idleMs` is gone at the next
// read or sweep.

export class BoundedMap<K, V> {
  /** Insertion order is touch order: a touched entry is re-inserted at the end. */
  readonly #entries = new Map<K, { value: V; touchedAt: number }>();

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
    if (now - entry.touchedAt < this.idleMs) return entry.value;
    this.#entries.delete(key);
    this.evicted(key, entry.value);
    return undefined;
  }

  /** The live value, touched; `create`d (making room) when absent. */
  touch(key: K, now: number, create: () => V): V {
    const value = this.peek(key, now) ?? create();
    this.#entries.delete(key);
    this.#entries.set(key, { value, touchedAt: now });
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
      if (now - entry.touchedAt >= this.idleMs) {
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
