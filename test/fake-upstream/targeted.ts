// Faults aimed at one resource or one credential of the fake TalkJS upstream, and what it saw of each.
// A resource the upstream chokes on (a poisoned user, a conversation whose shard is down) fails every
// batch it is in — whole, as a 500 for the call — so its batch-mates fail with it; a credential can
// fail on its own. Tests set these at runtime (like the fault plan) and read the per-resource and
// per-credential counts.

/**
 * Poisons one resource: a batch call holding an op on `path` is answered `status` (default 500) whole
 * and nothing in it runs; a single call to `path` gets the same status and does not run.
 */
export interface ResourcePoison {
  /** Relative to /v1/{appId}, compared as sent (e.g. `/users/bad`). */
  path: string;
  /** Only this app's resource (default: the path in any app). */
  appId?: string;
  status?: number;
}

/**
 * Fails one credential: every call whose Authorization header is exactly `credential` is answered
 * `status` (default 500) whole — before the app lookup, the rate limit and auth (a gateway in front of
 * the API failing that tenant), so it applies to apps the fake does not know too. Nothing runs.
 */
export interface CredentialFailure {
  credential: string;
  status?: number;
  /** Batch calls, single calls or either (default). */
  on?: 'batch' | 'single' | 'any';
}

/** Mutable by tests while the fake runs; `reset()` empties both lists. */
export interface TargetedFaults {
  resources: { poison: ResourcePoison[] };
  credentials: { fail: CredentialFailure[] };
}

/** What the fake saw of one resource (by path as sent, over every app). */
export interface ResourceStats {
  /** Batch calls (authorized, valid) holding at least one op on it. */
  batchCalls: number;
  /** Ops on it in those calls. */
  batchOps: number;
  /** Single calls to it (authorized). */
  singleCalls: number;
  /** Calls answered whole by its poison. */
  poisoned: number;
  /** Ops on it that ran. */
  executed: number;
}

/** What the fake saw of one credential (by exact Authorization header, over every app). */
export interface CredentialStats {
  batchCalls: number;
  singleCalls: number;
  /** Calls answered whole by a CredentialFailure. */
  failed: number;
}

/** One call a poison answered: who sent it and every op it held (the batch-mates that failed with it). */
export interface PoisonedCall {
  callId: number;
  via: 'batch' | 'single';
  appId: string;
  credential: string;
  /** The poisoned path that failed it. */
  resource: string;
  ops: Array<{ seq?: number; method: string; path: string }>;
  status: number;
}

export class TargetTracker {
  readonly faults: TargetedFaults = { resources: { poison: [] }, credentials: { fail: [] } };
  readonly poisonedCalls: PoisonedCall[] = [];
  readonly #resources = new Map<string, ResourceStats>();
  readonly #credentials = new Map<string, CredentialStats>();

  resource(path: string): ResourceStats {
    let s = this.#resources.get(path);
    if (!s) {
      s = { batchCalls: 0, batchOps: 0, singleCalls: 0, poisoned: 0, executed: 0 };
      this.#resources.set(path, s);
    }
    return s;
  }

  credential(credential: string): CredentialStats {
    let s = this.#credentials.get(credential);
    if (!s) {
      s = { batchCalls: 0, singleCalls: 0, failed: 0 };
      this.#credentials.set(credential, s);
    }
    return s;
  }

  /** Counts a call of this credential; the failure it draws, if any. */
  credentialCall(credential: string, kind: 'batch' | 'single'): CredentialFailure | undefined {
    const s = this.credential(credential);
    if (kind === 'batch') s.batchCalls++;
    else s.singleCalls++;
    const f = this.faults.credentials.fail.find(
      (x) => x.credential === credential && [kind, 'any'].includes(x.on ?? 'any'),
    );
    if (f) s.failed++;
    return f;
  }

  /**
   * Counts the ops of a call (a batch's, or the one of a single call) against their resources; the
   * poison that fails the call, if any (recorded in poisonedCalls).
   */
  opsArrived(
    call: { callId: number; via: 'batch' | 'single'; appId: string; credential: string },
    ops: Array<{ seq?: number; method: string; path: string }>,
  ): ResourcePoison | undefined {
    const seen = new Set<string>();
    for (const op of ops) {
      const s = this.resource(op.path);
      if (call.via === 'single') s.singleCalls++;
      else {
        s.batchOps++;
        if (!seen.has(op.path)) s.batchCalls++;
      }
      seen.add(op.path);
    }
    const poison = this.faults.resources.poison.find(
      (p) => seen.has(p.path) && (p.appId === undefined || p.appId === call.appId),
    );
    if (!poison) return undefined;
    this.resource(poison.path).poisoned++;
    const { callId, via, appId, credential } = call;
    this.poisonedCalls.push({
      callId,
      via,
      appId,
      credential,
      resource: poison.path,
      ops,
      status: poison.status ?? 500,
    });
    return poison;
  }

  reset(): void {
    this.faults.resources.poison.length = 0;
    this.faults.credentials.fail.length = 0;
    this.poisonedCalls.length = 0;
    this.#resources.clear();
    this.#credentials.clear();
  }
}
