// A queued op for tests of the engine's parts (queues, index, planner, app state): the fields a test
// is about, the rest as a fresh op has them.

import { newPendingOp, type PendingOp } from '../batcher/op.js';
import { resourceOf } from '../batcher/resources.js';
import type { Method } from '../dialect/dialect.js';

export interface PendingOpFields {
  readonly seq: number;
  readonly method: Method;
  readonly path: string;
  readonly credential?: string;
  readonly appId?: string;
  readonly enqueuedAt?: number;
  readonly deadline?: number;
  /** The deadline is the caller's own (PendingOp.hurried). */
  readonly hurried?: boolean;
  readonly suspect?: boolean;
  readonly isolated?: boolean;
  /** What the dialect says the op does (absent: by method). */
  readonly write?: boolean;
  readonly retrySafe?: boolean;
}

export function pendingOp(f: PendingOpFields): PendingOp {
  return newPendingOp({
    seq: f.seq,
    appId: f.appId ?? 'a',
    credential: f.credential ?? 'k',
    op: {
      method: f.method,
      path: f.path,
      query: {},
      body: undefined,
      apiVersion: undefined,
      ...(f.write !== undefined && { write: f.write }),
      ...(f.retrySafe !== undefined && { retrySafe: f.retrySafe }),
    },
    resource: resourceOf(f.path),
    isolated: f.isolated ?? false,
    enqueuedAt: f.enqueuedAt ?? 0,
    deadline: f.deadline ?? 0,
    hurried: f.hurried ?? false,
    suspect: f.suspect ?? false,
  });
}
