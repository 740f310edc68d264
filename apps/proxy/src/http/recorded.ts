// What the data listener records of each answered call, for whoever counts them: the metrics
// (admin/metrics) take these records; the listener knows nothing of how they are counted.

import type { PassReason } from './route.js';

export type RequestKind = 'batched' | 'passthrough' | 'client-batch' | 'rejected';
/** Who made an answer: the proxy itself (its errors: queue full, deadline, auth...) or the upstream. */
export type AnswerSource = 'proxy' | 'upstream';

export interface RequestRecord {
  readonly kind: RequestKind;
  readonly status: number;
  readonly source: AnswerSource;
  /** Why it was not batched (pass-through and client-batch calls). */
  readonly reason?: PassReason | undefined;
  /** From arrival to the answer's head, as the caller saw it. */
  readonly seconds: number;
}

/** Where the listener hands each answered call's record. */
export interface CallMetrics {
  request(r: RequestRecord): void;
}
