// Delays a fake can cancel all at once when it closes (a held answer must not outlive the server).
export class Timers {
  readonly #pending = new Set<NodeJS.Timeout>();

  /** Resolves after `ms`; at once (no timer) for 0 or none, so the fast path stays short. */
  sleep(ms: number | undefined): Promise<void> {
    if (!ms || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.#pending.delete(t);
        resolve();
      }, ms);
      this.#pending.add(t);
    });
  }

  cancelAll(): void {
    for (const t of this.#pending) clearTimeout(t);
    this.#pending.clear();
  }
}
