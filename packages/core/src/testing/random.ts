// Randomness a property test can replay: a generator from the property's seed, and a shuffle on it
// (how a fake upstream runs a batch's ops in an order of its own).

/** A linear congruential generator in [0, 1) from `seed`: the same seed, the same sequence. */
export function seededRandom(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state * 1103515245 + 12345) | 0;
    return ((state >>> 0) % 1_000_000) / 1_000_000;
  };
}

/** A copy of `items` in an order drawn from `random` (Fisher–Yates). */
export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
