// When does an app's burst run out? From the tokens the status page itself read from the limiter,
// a few seconds apart: the slope of those readings is the net drain (spending minus refill) of every
// replica sharing the bucket, which counting this replica's own grants could not see.
//
// Readings are taken only when status.json is built (a page polls once a second), so an unwatched
// proxy does no extra limiter reads; the first forecast comes once two readings are MIN_SPAN_MS apart.

/** One look at a bucket: wall clock (ms) and whole tokens left. */
export interface Reading {
  readonly t: number;
  readonly tokens: number;
}

export type ForecastState =
  /** Tokens fall: `emptyInMs` says when the burst is spent at this rate. */
  | 'draining'
  /** Tokens hold or rise: spending is within the refill rate. */
  | 'not-draining'
  /** No token left: calls are paced at the bucket's rate (and wait in the queue). */
  | 'empty'
  /** Not enough readings yet to tell a rate. */
  | 'measuring'
  /** The limiter did not answer. */
  | 'unknown';

export interface BurstForecast {
  readonly state: ForecastState;
  /** Net tokens lost per second over the readings (negative: refilling); null while measuring. */
  readonly drainPerSec: number | null;
  /** Time until no token is left at that rate; null unless draining. */
  readonly emptyInMs: number | null;
}

/** The readings a rate is fitted over. */
export const WINDOW_MS = 30_000;
/** Readings closer together than this are one reading (pages polling together, a reload). */
export const MIN_GAP_MS = 500;
/** A rate from less time than this is noise: the tokens are whole numbers. */
export const MIN_SPAN_MS = 3_000;

/**
 * The forecast from `readings` (oldest first, the last one = now). The rate is the least-squares
 * slope over the window, so one burst-1 bucket flickering between 0 and 1 does not swing it; it
 * counts as draining only when the fitted line lost at least one whole token over the readings.
 */
export function forecastBurst(readings: readonly Reading[], now: number): BurstForecast {
  const last = readings.at(-1);
  if (!last) return { state: 'unknown', drainPerSec: null, emptyInMs: null };
  const inWindow = readings.filter((r) => r.t > now - WINDOW_MS && r.t <= now);
  const first = inWindow[0];
  const drainPerSec =
    first && last.t - first.t >= MIN_SPAN_MS ? -slopePerSec(inWindow) : (null as number | null);
  if (last.tokens <= 0) return { state: 'empty', drainPerSec: rounded(drainPerSec), emptyInMs: null };
  if (drainPerSec === null || !first) return { state: 'measuring', drainPerSec: null, emptyInMs: null };
  const lostOverSpan = (drainPerSec * (last.t - first.t)) / 1_000;
  if (drainPerSec <= 0 || lostOverSpan < 1)
    return { state: 'not-draining', drainPerSec: rounded(drainPerSec), emptyInMs: null };
  return {
    state: 'draining',
    drainPerSec: rounded(drainPerSec),
    emptyInMs: Math.round((last.tokens / drainPerSec) * 1_000),
  };
}

/** Tokens per second of the least-squares line through the readings. */
function slopePerSec(readings: readonly Reading[]): number {
  const n = readings.length;
  let meanT = 0;
  let meanY = 0;
  for (const r of readings) {
    meanT += r.t / n;
    meanY += r.tokens / n;
  }
  let num = 0;
  let den = 0;
  for (const r of readings) {
    num += (r.t - meanT) * (r.tokens - meanY);
    den += (r.t - meanT) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 1_000;
}

function rounded(n: number | null): number | null {
  return n === null ? null : Math.round(n * 100) / 100 + 0;
}

/** Recent readings per bucket, for the apps the page lists; everything else is forgotten. */
export class TokenReadings {
  readonly #byKey = new Map<string, Reading[]>();

  /** Notes `tokens` (null: the limiter did not answer) and returns the forecast as of `now`. */
  observe(key: string, now: number, tokens: number | null): BurstForecast {
    if (tokens === null) return { state: 'unknown', drainPerSec: null, emptyInMs: null };
    const kept = (this.#byKey.get(key) ?? []).filter((r) => r.t > now - WINDOW_MS && r.t < now);
    const reading = { t: now, tokens };
    const previous = kept.at(-1);
    // Too close to the last kept reading: used for this answer, not kept (else polls 100 ms apart
    // would keep replacing each other and never span MIN_SPAN_MS).
    const tooClose = previous !== undefined && now - previous.t < MIN_GAP_MS;
    this.#byKey.set(key, tooClose ? kept : [...kept, reading]);
    return forecastBurst([...kept, reading], now);
  }

  /** Forgets every bucket not in `keys` (apps the engine freed, or no longer listed). */
  retain(keys: ReadonlySet<string>): void {
    for (const key of this.#byKey.keys()) if (!keys.has(key)) this.#byKey.delete(key);
  }

  get size(): number {
    return this.#byKey.size;
  }
}
