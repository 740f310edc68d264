// What the conformance suite (dialect.case.ts) is told about a dialect: where dialects differ by
// design, the difference is a field here, never a branch on the dialect's name.

import type { FakeWire, OpReply } from '../testing/fake-transport.js';
import type { BatchDialect, Method, OpInput, OpRequest } from './dialect.js';

export interface DialectSubject {
  readonly dialect: BatchDialect;
  /** The upstream's side of the dialect's batch call. */
  readonly wire: FakeWire;
  /** The scope (`AppTarget.appId`) the batch is for: a TalkJS app, a Graph API version. */
  readonly scope: string;
  /** A batchable path below the scope, e.g. `/users/u1`. */
  readonly path: string;
  /** The most ops one batch carries, as the upstream documents it. */
  readonly maxOps: number;
  /** What a GET or a DELETE without a body carries as its payload on the wire (TalkJS `{}`). */
  readonly emptyPayload: unknown;
  /** What a per-op 429 inside a 200 batch is: a retry (`again`) or the op's own answer (TalkJS). */
  readonly opThrottle: 'again' | 'answer';
  /** What a 429's pause covers by default (`BatchDialect.throttleScope`, absent = `app`). */
  readonly throttleScope: 'app' | 'credential';
  /**
   * A request header that travels inside the op, and how to read op `index`'s headers off the batch
   * call's body (the fake wire does not decode them); absent: the dialect carries none.
   */
  readonly carries?: {
    readonly name: string;
    readonly value: string;
    readonly onWire: (batchBody: string, index: number) => Record<string, string> | undefined;
  };
  /** An op answer header the dialect relays to the op's caller; absent: it relays none. */
  readonly relays?: { readonly name: string; readonly value: string };
  /**
   * A non-JSON op answer as the upstream puts it in the batch (headers and body) and the text the
   * caller gets; absent: the dialect has no such answer (its op bodies are JSON values).
   */
  readonly textAnswer?: { readonly reply: OpReply; readonly text: string };
  /** What a POST without a body does: refused with reason `body`, or travels with this payload. */
  readonly writeWithoutBody: { readonly refused: 'body' } | { readonly payload: unknown };
  /**
   * The HTTP methods it batches (default: every batchable method); any other is refused with reason
   * `method`. JSON-RPC: POST alone.
   */
  readonly methods?: readonly Method[];
  /**
   * The call `n` (from 0, a new number per call) in the dialect's own form, for a dialect whose calls
   * are not REST calls: JSON-RPC makes the REST-shaped call a request object whose method is the
   * call's path and whose params are its body. Absent: the call as it is.
   */
  readonly call?: (rest: OpInput, n: number) => OpInput;
  /**
   * What the caller of `op` gets for the upstream's `reply`, when not the reply's status and body as
   * they are: JSON-RPC answers 200 with a response object carrying the caller's own id.
   */
  readonly answer?: (reply: OpReply, op: OpRequest) => { readonly status: number; readonly body: unknown };
}
