// Counts the data listener's calls from arrival until their answer is written (or the caller is
// gone), so a shutdown waits for every accepted call — batched, pass-through and the client's own
// batch call alike — and not only for what the engine has queued (SPEC §8: SIGTERM row).

export class CallTracker {
  #open = 0;
  #idleWaiters: Array<() => void> = [];

  get count(): number {
    return this.#open;
  }

  /** Counts one call; returns its end, which may be called more than once. */
  begin(): () => void {
    this.#open += 1;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.#open -= 1;
      if (this.#open === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
    };
  }

  /** Resolves when no call is open. */
  idle(): Promise<void> {
    if (this.#open === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }
}
