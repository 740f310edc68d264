// A fake JSON-RPC 2.0 upstream on loopback (jsonrpc.org/specification): `POST {any path}` with one
// request object or an array of them, answered in a shuffled order; bearer tokens; a limit on HTTP
// calls answered 429 with Retry-After; at most `maxBatch` entries (more: 413); per-entry errors
// (-32601 method not found, -32600 invalid request, -32602 invalid params) under HTTP 200; a method
// that answers an invalid entry; injectable transport faults. It records every entry it executed, so
// a test can tell whether a write ran twice.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Answer, BatchServer, type Codec } from '../fake-upstream/batch-server.js';
import { clearPlan, type FaultPlan, type TransportFault, takeFault } from '../fake-upstream/fault-plan.js';
import { type BucketLimit, Gcra } from '../fake-upstream/gcra.js';
import { shuffled } from '../fake-upstream/prng.js';
import { executeEntry, type RpcState } from './methods.js';

export const DEFAULT_MAX_BATCH = 100;

export interface FakeJsonRpcOptions {
  /** Accepted bearer tokens (`Authorization: Bearer {token}`). */
  tokens: readonly string[];
  /** The most entries one batch may carry; more is answered 413. Default DEFAULT_MAX_BATCH. */
  maxBatch?: number;
  /** HTTP calls per token (a batch is one call); beyond it 429 with Retry-After. Undefined: none. */
  limit?: BucketLimit;
  latencyMs?: number | (() => number);
  seed?: number;
  port?: number;
  host?: string;
  onCall?: (call: FakeJsonRpcCall) => void;
}

/** One HTTP call the fake answered. */
export interface FakeJsonRpcCall {
  callId: number;
  method: string;
  target: string;
  status: number;
  /** Entries of a batch call that was executed. */
  size?: number;
  ms: number;
}

/** One request object the fake executed. */
export interface Executed {
  callId: number;
  /** Whether it came inside an array. */
  batch: boolean;
  path: string;
  token: string;
  method: string;
  params: unknown;
  id: unknown;
}

const JSON_TYPE = 'application/json';

const errorObject = (code: number, message: string, id: unknown = null) => ({
  jsonrpc: '2.0',
  id,
  error: { code, message },
});

const codec: Codec = {
  headers: (answer) => ({ 'Content-Type': JSON_TYPE, ...answer.headers }),
  faultAnswer: (status, retryAfterSec, body) => ({
    status,
    headers: retryAfterSec === undefined ? {} : { 'Retry-After': String(retryAfterSec) },
    body: body ?? errorObject(-32603, `injected ${status}`),
  }),
  bug: (message) => ({ status: 500, body: errorObject(-32603, message) }),
};

export class FakeJsonRpc {
  readonly executed: Executed[] = [];
  /** Transport faults for the next calls (`on`: batch, single or any). */
  readonly faults: FaultPlan<TransportFault> = { queue: [] };
  readonly state: RpcState = { counters: new Map(), block: 0 };
  url = '';
  readonly #options: FakeJsonRpcOptions;
  readonly #server: BatchServer;
  #limiter: Gcra | undefined;
  #close: (() => Promise<void>) | undefined;

  constructor(options: FakeJsonRpcOptions) {
    this.#options = options;
    this.#server = new BatchServer({
      codec,
      bodyLimitBytes: 4 * 1024 * 1024,
      latencyMs: options.latencyMs,
      seed: options.seed,
      onCall: options.onCall,
    });
    this.#limiter = options.limit ? new Gcra(options.limit) : undefined;
  }

  /** Replaces the call limit (undefined: none) for the calls from now on. */
  setLimit(limit: BucketLimit | undefined): void {
    this.#limiter = limit ? new Gcra(limit) : undefined;
  }

  /** HTTP calls answered 429 so far. */
  throttled = 0;

  get maxBatch(): number {
    return this.#options.maxBatch ?? DEFAULT_MAX_BATCH;
  }

  /** Batch calls executed so far, and single calls. */
  get calls(): { batch: number; single: number } {
    const ids = (batch: boolean) =>
      new Set(this.executed.filter((e) => e.batch === batch).map((e) => e.callId));
    return { batch: ids(true).size, single: ids(false).size };
  }

  async start(): Promise<this> {
    const listening = await this.#server.listen(
      (req, res) => this.#server.guard(res, this.#handle(req, res)),
      { port: this.#options.port, host: this.#options.host ?? '127.0.0.1' },
    );
    this.url = listening.url;
    this.#close = () => listening.close();
    return this;
  }

  async close(): Promise<void> {
    await this.#close?.();
  }

  reset(): void {
    this.executed.length = 0;
    this.state.counters.clear();
    this.state.block = 0;
    clearPlan(this.faults);
    this.#limiter = this.#options.limit ? new Gcra(this.#options.limit) : undefined;
    this.throttled = 0;
    this.#server.reset();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrival = this.#server.arrive(req, res, req.method ?? '');
    const { buf, tooLarge } = await this.#server.readBody(req);
    const reply = (answer: Answer) => this.#server.reply(res, answer);
    if (req.method !== 'POST') return reply({ status: 405, headers: { Allow: 'POST' } });
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (token === undefined || !this.#options.tokens.includes(token))
      return reply({ status: 401, body: errorObject(-32001, 'unauthorized') });
    const wait = this.#limiter?.take(token, arrival.at) ?? 0;
    if (wait > 0) {
      this.throttled++;
      const retryAfter = String(Math.max(1, Math.ceil(wait / 1000)));
      return reply({
        status: 429,
        headers: { 'Retry-After': retryAfter },
        body: errorObject(-32005, 'rate limited'),
      });
    }
    if (tooLarge) return reply({ status: 413, body: errorObject(-32600, 'request too large') });
    let request: unknown;
    try {
      request = JSON.parse(buf.toString('utf8'));
    } catch {
      return reply({ status: 200, body: errorObject(-32700, 'Parse error') });
    }
    const entries: unknown[] | undefined = Array.isArray(request) ? request : undefined;
    const batch = entries !== undefined;
    const kind = batch ? 'batch' : 'single';
    if (entries && entries.length > this.maxBatch)
      return reply({ status: 413, body: errorObject(-32600, `batch of more than ${this.maxBatch} entries`) });
    const fault = takeFault(
      this.faults,
      (f) => (f.on ?? 'batch') === 'any' || (f.on ?? 'batch') === kind,
      this.#server.faultRandom,
    );
    await this.#server.serve(res, fault, () => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const run = (entry: unknown) => {
        const done = executeEntry(this.state, entry);
        if (done.executed) {
          const { method, params, id } = entry as Record<string, unknown>;
          this.executed.push({
            callId: arrival.callId,
            batch,
            path,
            token,
            method: String(method),
            params,
            id,
          });
        }
        return done.answer;
      };
      if (!entries) {
        const answer = run(request);
        return answer === undefined ? { status: 204 } : { status: 200, body: answer };
      }
      // An empty array is one invalid request (§6), answered by one error object.
      if (entries.length === 0) return { status: 200, body: errorObject(-32600, 'Invalid Request') };
      this.#server.executedBatch(res, entries.length);
      const answers = entries.map(run).filter((a) => a !== undefined);
      // All notifications: nothing to answer (§6).
      if (answers.length === 0) return { status: 204 };
      return { status: 200, body: shuffled(answers, this.#server.orderRandom) };
    });
  }
}

export async function startFakeJsonRpc(options: FakeJsonRpcOptions): Promise<FakeJsonRpc> {
  return new FakeJsonRpc(options).start();
}
