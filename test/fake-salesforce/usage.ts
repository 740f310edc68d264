// The org's API request limit: calls counted over a rolling window ("API Request Limits and
// Allocations": a rolling 24-hour period). A composite call is one call whatever it carries; a single
// call is one. Over the limit Salesforce refuses with 403 REQUEST_LIMIT_EXCEEDED ("Status Codes and
// Error Responses"), and every answer to an authorized call tells the usage in `Sforce-Limit-Info:
// api-usage=N/M` ("Limit Info Header").

export interface ApiLimit {
  /** Calls allowed in the window. */
  limit: number;
  /** The window's length (ms). Salesforce's is 24 h. */
  windowMs: number;
}

export const DEFAULT_API_LIMIT: ApiLimit = { limit: 15_000, windowMs: 24 * 60 * 60 * 1000 };

export class ApiUsage {
  #limit: ApiLimit;
  /** Times (ms) of the counted calls, oldest first. */
  #calls: number[] = [];

  constructor(limit: ApiLimit = DEFAULT_API_LIMIT) {
    this.#limit = limit;
  }

  get limit(): number {
    return this.#limit.limit;
  }

  /** Calls counted in the window ending at `now`. */
  used(now: number): number {
    const from = now - this.#limit.windowMs;
    while (this.#calls.length > 0 && (this.#calls[0] as number) <= from) this.#calls.shift();
    return this.#calls.length;
  }

  /** Counts one call at `now`, unless the window is full: then false (the call is refused, not counted). */
  take(now: number): boolean {
    if (this.used(now) >= this.#limit.limit) return false;
    this.#calls.push(now);
    return true;
  }

  /** The header value after the calls counted so far. */
  header(now: number): string {
    return `api-usage=${this.used(now)}/${this.#limit.limit}`;
  }

  /** A new limit from now on; the calls already counted stay counted. */
  set(limit: ApiLimit): void {
    this.#limit = limit;
  }

  reset(limit: ApiLimit): void {
    this.#limit = limit;
    this.#calls = [];
  }
}
