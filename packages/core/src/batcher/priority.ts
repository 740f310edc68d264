// Which calls go first when tokens are scarce (issue #31): a caller's priority, `high`, `normal` or
// `low`. Strict inside a group (app + credential: the batch takes its high ops before its normal ones
// before its low ones, ordering rules permitting), weighted across groups so that `low` never starves:
// grants follow a cycle of seven — four prefer high, two normal, one low — and a grant whose class has
// nothing ready goes to the best class that has. While all three are backlogged, high gets at least
// 4/7 of the grants, normal 2/7 and low 1/7; alone, any class gets them all.

export const PRIORITIES = ['high', 'normal', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** A priority as a rank: 0 high, 1 normal, 2 low (lower goes first). */
export type Rank = 0 | 1 | 2;

export const NORMAL: Rank = 1;

export function rankOf(priority: Priority | undefined): Rank {
  return priority === 'high' ? 0 : priority === 'low' ? 2 : NORMAL;
}

/** The class each grant of the cycle prefers: 4 high, 2 normal, 1 low, spread out. */
const CYCLE: readonly Rank[] = [0, 1, 0, 2, 0, 1, 0];

/** The class grant number `grant` prefers. */
export function preferredRank(grant: number): Rank {
  return CYCLE[((grant % CYCLE.length) + CYCLE.length) % CYCLE.length] as Rank;
}

/** Where a flush of class `rank` sorts at a grant preferring `preferred`: that class, then by rank. */
export function rankOrder(rank: Rank, preferred: Rank): number {
  return rank === preferred ? -1 : rank;
}

/** The op a single call takes from a flush: its best rank's oldest (ops come oldest first). */
export function firstByRank<T extends { readonly rank: Rank }>(ops: readonly T[]): T | undefined {
  let best: T | undefined;
  for (const op of ops) {
    if (op.rank === 0) return op;
    if (best === undefined || op.rank < best.rank) best = op;
  }
  return best;
}
