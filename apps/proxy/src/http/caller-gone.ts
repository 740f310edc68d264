// Cancellation that costs nothing until a caller disconnects. An AbortController per request (an
// EventTarget, its signal, a listener per consumer) was a visible part of the CPU per call, while nearly
// every caller stays until its answer. This records the engine's one listener in a field, and makes a
// real AbortSignal only for the paths that need one (undici's pass-through, a wait for a token).

import type { CallerSignal } from '@batch-proxy/core';

export class CallerGone implements CallerSignal {
  #aborted = false;
  #listeners: Array<() => void> | undefined;
  #controller: AbortController | undefined;

  get aborted(): boolean {
    return this.#aborted;
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.#aborted) return;
    if (this.#listeners) this.#listeners.push(listener);
    else this.#listeners = [listener];
  }

  /** A real AbortSignal tied to this one, made on first use. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort();
    }
    return this.#controller.signal;
  }

  /** The caller went away: every listener runs once, the real signal (if any) aborts. */
  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (listeners) for (const listener of listeners) listener();
    this.#controller?.abort();
  }
}
