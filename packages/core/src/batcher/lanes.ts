// An app's two ways upstream — the batch lane and, when configured, the single-call lane — over their
// budgets: which may be asked now, until when none surely sends, and when to look again. One place
// answers "when may I ask again?"; a pass (one look at the plan, with the denials it met) is an object
// of its own, so nothing about a denial is threaded through the engine by hand.

import type { Budget, BudgetName } from './budget.js';
import type { Action, LaneView, Plan } from './planner.js';

export interface LaneOptions {
  readonly windowMs: number;
  /** A flush of one op leaves as a single call (SINGLE_OP_DIRECT). */
  readonly singleOpDirect: boolean;
}

export class Lanes {
  constructor(
    readonly batch: Budget,
    readonly rest: Budget | undefined,
    private readonly options: LaneOptions,
  ) {}

  budget(name: BudgetName): Budget | undefined {
    return name === 'batch' ? this.batch : this.rest;
  }

  /** The budget an action spends: a batch the batch budget, a single call the one it names. */
  budgetOf(action: Exclude<Action, { kind: 'none' }>): Budget {
    return action.kind === 'batch' ? this.batch : (this.budget(action.budget) ?? this.batch);
  }

  /** When a lane is asked again at the earliest: its reopening, or the poll after a denial. */
  opensAt(): number {
    return this.rest ? Math.min(this.batch.blockedUntil, this.rest.blockedUntil) : this.batch.blockedUntil;
  }

  /** A time before which no lane surely sends (a pause, a debt): ops due earlier cannot leave. */
  closedUntil(): number {
    return this.rest ? Math.min(this.batch.closedUntil, this.rest.closedUntil) : this.batch.closedUntil;
  }

  /** Both budgets as a fresh app would have them. */
  isFresh(now: number): boolean {
    return this.batch.isFresh(now) && (this.rest?.isFresh(now) ?? true);
  }

  /** A new look at the lanes, with no denial yet. */
  pass(): LanePass {
    return new LanePass(this, this.options);
  }
}

/** One pass of the pump over the lanes: the budgets it was denied are not asked again in it. */
export class LanePass {
  /** At most the two budgets; made on the first denial only. */
  #denied: Budget[] | undefined;

  constructor(
    private readonly lanes: Lanes,
    private readonly options: LaneOptions,
  ) {}

  /** `budget` said no in this pass. */
  deny(budget: Budget): void {
    this.#denied ??= [];
    this.#denied.push(budget);
  }

  #isDenied(budget: Budget): boolean {
    return this.#denied?.includes(budget) ?? false;
  }

  /** What the planner's `decide` reads: which lanes may be asked now. */
  view(now: number): LaneView {
    const { batch, rest } = this.lanes;
    const open = (b: Budget | undefined) => b !== undefined && !this.#isDenied(b) && b.isOpen(now);
    return {
      batchOpen: open(batch),
      batchClosedForMs: (batch.askAgainAt(now, this.#isDenied(batch)) ?? now) - now,
      hasRest: rest !== undefined,
      restOpen: open(rest),
      windowMs: this.options.windowMs,
      singleOpDirect: this.options.singleOpDirect,
    };
  }

  /**
   * When to look again: the plan's next event, or a closed budget opening. A budget already open
   * (the rest lane, unused while the batch lane reopens within a window) is no event. A budget this
   * pass was denied whose wait was already over by this look is asked again one poll on — never left
   * to the other lane's reopening or the plan's next event (a deadline).
   */
  wakeAt(planned: Plan, now: number): number {
    if (planned.flushes.length === 0) return planned.wakeAt;
    let at = planned.wakeAt;
    for (const budget of [this.lanes.batch, this.lanes.rest]) {
      const again = budget?.askAgainAt(now, this.#isDenied(budget));
      if (again !== undefined) at = Math.min(at, again);
    }
    return at;
  }
}
