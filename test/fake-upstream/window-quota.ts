// A hidden quota counted over fixed windows, the way most APIs that send rate-limit headers count
// (GitHub: per hour; Salesforce: per rolling day, here a fixed one), and the headers each style sends
// about it. The limit may change mid-run (`setLimit`): the proxy must follow it from the headers.

export type QuotaStyle = 'ietf' | 'ietf-triplet' | 'x-ratelimit' | 'salesforce' | 'graph';

export interface QuotaOptions {
  /** Calls allowed per window, per app. */
  readonly limit: number;
  readonly windowMs: number;
  /** Which headers every answer carries about it. */
  readonly style: QuotaStyle;
}

export interface QuotaFigures {
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  /** Until the window ends, in ms. */
  readonly resetInMs: number;
}

/** Windows aligned on multiples of `windowMs` of the monotonic clock, one count per app. */
export class WindowQuota {
  #limit: number;
  /** A new limit, from the next window on. */
  #next: number | undefined;
  #window = Number.NEGATIVE_INFINITY;
  readonly #windowMs: number;
  readonly #used = new Map<string, { window: number; used: number }>();

  constructor(options: QuotaOptions) {
    if (!(options.limit >= 0 && options.windowMs > 0))
      throw new TypeError('need limit >= 0 and windowMs > 0');
    this.#limit = options.limit;
    this.#windowMs = options.windowMs;
  }

  /**
   * The hidden limit from the next window on, as real quotas change (a plan changed mid-window would
   * answer 429 to calls the last figures allowed, which no client can avoid).
   */
  setLimit(limit: number): void {
    this.#next = limit;
  }

  /** Counts a call of `appId` arriving at `at` (ms); false: over the limit (a 429, not counted). */
  take(appId: string, at: number): boolean {
    const count = this.#count(appId, at);
    if (count.used >= this.#limit) return false;
    count.used++;
    return true;
  }

  figures(appId: string, at: number): QuotaFigures {
    const count = this.#count(appId, at);
    return {
      limit: this.#limit,
      used: count.used,
      remaining: Math.max(0, this.#limit - count.used),
      resetInMs: (count.window + 1) * this.#windowMs - at,
    };
  }

  #count(appId: string, at: number): { window: number; used: number } {
    const window = Math.floor(at / this.#windowMs);
    if (window > this.#window) {
      this.#window = window;
      if (this.#next !== undefined) this.#limit = this.#next;
      this.#next = undefined;
    }
    let count = this.#used.get(appId);
    if (count === undefined || count.window !== window) {
      count = { window, used: 0 };
      this.#used.set(appId, count);
    }
    return count;
  }
}

/**
 * The headers `style` sends for `f` at wall time `epochMs`. Resets round up to whole seconds, as
 * the real ones do (a proxy that spreads over a rounded-down reset would finish early). Graph's hint
 * is sent only from 80 % used, as Graph does.
 */
export function quotaHeaders(style: QuotaStyle, f: QuotaFigures, epochMs: number): Record<string, string> {
  const resetSec = Math.ceil(f.resetInMs / 1000);
  switch (style) {
    case 'ietf':
      return {
        ratelimit: `"default";r=${f.remaining};t=${resetSec}`,
        'ratelimit-policy': `"default";q=${f.limit};w=${resetSec}`,
      };
    case 'ietf-triplet':
      return {
        'ratelimit-limit': String(f.limit),
        'ratelimit-remaining': String(f.remaining),
        'ratelimit-reset': String(resetSec),
      };
    case 'x-ratelimit':
      // GitHub: the reset as epoch seconds.
      return {
        'x-ratelimit-limit': String(f.limit),
        'x-ratelimit-remaining': String(f.remaining),
        'x-ratelimit-reset': String(Math.ceil((epochMs + f.resetInMs) / 1000)),
      };
    case 'salesforce':
      return { 'sforce-limit-info': `api-usage=${f.used}/${f.limit}` };
    case 'graph': {
      const usage = f.limit === 0 ? 1.8 : f.used / f.limit;
      return usage >= 0.8 ? { 'x-ms-throttle-limit-percentage': Math.min(1.8, usage).toFixed(2) } : {};
    }
  }
}
