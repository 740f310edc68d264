// The conformance suite every BatchDialect passes (conformance.test.ts), as limiter.case.ts is for
// the limiters: the dialect builds the batch, the upstream's side is played by the dialect's fake
// wire (testing/fake-transport.ts: decodeBatch/encodeBatch), and the answer is read back through
// `readBatchAnswer`. Where the dialects differ by design, the difference is a field of the subject.

import { describe, expect, it } from 'vitest';
import { batchAnswerOf, type FakeOp, type FakeWire, type OpReply } from '../testing/fake-transport.js';
import {
  type BatchDialect,
  batchableMethods,
  type Method,
  type OpInput,
  type OpRequest,
  type OpResult,
} from './dialect.js';

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
}

export function dialectConformance(name: string, subject: DialectSubject): void {
  const { dialect, wire } = subject;

  const input = (method: Method, over: Partial<OpInput> = {}): OpInput => ({
    method,
    target: { appId: subject.scope, path: subject.path },
    query: new URLSearchParams(),
    body: method === 'POST' || method === 'PUT' || method === 'PATCH' ? `{"method":"${method}"}` : undefined,
    apiVersion: undefined,
    headers: {},
    search: '',
    ...over,
  });

  const opOf = (call: OpInput): OpRequest => {
    const built = dialect.toOp(call);
    if ('passThrough' in built) throw new Error(`expected an op, got: ${built.passThrough}`);
    return built.op;
  };

  /** Builds the batch of `ops` and decodes it as the upstream does. */
  const send = (ops: readonly OpRequest[]) => {
    const request = dialect.batchRequest(subject.scope, ops);
    expect(request.method).toBe('POST');
    expect(wire.isBatch(request)).toBe(true);
    return { request, wireOps: wire.decodeBatch(request.body ?? '') };
  };

  /** The upstream's 200 answer carrying `replies` (in the order given), read back for `count` ops. */
  const answer = (replies: ReadonlyArray<readonly [FakeOp, OpReply]>, count: number): OpResult[] => {
    // The answer's headers go with it: a multipart answer names its boundary there (Google).
    const { headers, body } = batchAnswerOf(wire, replies);
    const read = dialect.readBatchAnswer(200, body, count, 'parallel', { ops: [], headers });
    if (read.kind !== 'results') throw new Error(`expected results, got ${JSON.stringify(read)}`);
    expect(read.results).toHaveLength(count);
    return read.results;
  };

  /** Op i's reply: a status and a body of its own, so a mix-up shows. */
  const replyOf = (i: number): OpReply => ({ status: 200 + (i % 7), body: { answer: i } });

  const expectAnswered = (result: OpResult | undefined, i: number) =>
    expect(result).toMatchObject({ ok: true, status: 200 + (i % 7), body: { answer: i } });

  const expectAllAnswered = (results: readonly OpResult[]) => {
    for (const [i, r] of results.entries()) expectAnswered(r, i);
  };

  /** Three ops (GET, POST, DELETE) sent and decoded. */
  const three = () => send(['GET', 'POST', 'DELETE'].map((m) => opOf(input(m as Method)))).wireOps;

  describe(`${name} (dialect conformance)`, () => {
    it('names its own maxOps', () => {
      expect(dialect.maxOps).toBe(subject.maxOps);
    });

    it.each(
      batchableMethods,
    )('round-trips a %s: method, path and body on the wire, its answer back', (method) => {
      const call = input(method);
      const { wireOps } = send([opOf(call)]);
      expect(wireOps).toHaveLength(1);
      const [sent] = wireOps as [FakeOp];
      expect(sent.method).toBe(method);
      expect(sent.path).toBe(subject.path);
      expect(sent.body).toEqual(call.body === undefined ? subject.emptyPayload : JSON.parse(call.body));
      const [result] = answer([[sent, { status: 201, body: { done: method } }]], 1);
      expect(result).toMatchObject({ ok: true, status: 201, body: { done: method } });
    });

    it('carries every method side by side in one batch, in sequence order', () => {
      const calls = batchableMethods.map((m) => input(m));
      const { wireOps } = send(calls.map(opOf));
      expect(wireOps.map((op) => op.method)).toEqual([...batchableMethods]);
      expect(new Set(wireOps.map((op) => String(op.id))).size).toBe(calls.length);
      const results = answer(
        wireOps.map((op, i) => [op, replyOf(i)] as const),
        calls.length,
      );
      expectAllAnswered(results);
    });

    it('gives each op its own answer when the upstream answers in reverse or shuffled order', () => {
      const ops = Array.from({ length: 5 }, () => opOf(input('GET')));
      const { wireOps } = send(ops);
      const replies = wireOps.map((op, i) => [op, replyOf(i)] as const);
      for (const order of [
        [4, 3, 2, 1, 0],
        [2, 0, 4, 1, 3],
        [1, 4, 0, 3, 2],
      ]) {
        const results = answer(
          order.map((i) => replies[i] as (typeof replies)[number]),
          5,
        );
        expectAllAnswered(results);
      }
    });

    it('fails only the op whose result is missing', () => {
      const wireOps = three();
      const results = answer(
        [0, 2].map((i) => [wireOps[i] as FakeOp, replyOf(i)] as const),
        3,
      );
      expectAnswered(results[0], 0);
      expect(results[1]).toMatchObject({ ok: false });
      expectAnswered(results[2], 2);
    });

    it('fails only the op whose result comes twice', () => {
      const wireOps = three();
      const results = answer(
        [0, 1, 2, 1].map((i) => [wireOps[i] as FakeOp, replyOf(i)] as const),
        3,
      );
      expectAnswered(results[0], 0);
      expect(results[1]).toMatchObject({ ok: false });
      expectAnswered(results[2], 2);
    });

    it.each([99, 600, 0])('fails only the op whose result has an invalid status (%s)', (status) => {
      const wireOps = three();
      const results = answer(
        wireOps.map((op, i) => [op, i === 1 ? { status, body: {} } : replyOf(i)] as const),
        3,
      );
      expectAnswered(results[0], 0);
      expect(results[1]).toMatchObject({ ok: false });
      expectAnswered(results[2], 2);
    });

    it('passes over a result for an op it never sent', () => {
      const wireOps = three();
      const stranger = { ...(wireOps[0] as FakeOp), id: typeof wireOps[0]?.id === 'number' ? 7 : '7' };
      const results = answer(
        [
          [stranger, { status: 200, body: { answer: 'stranger' } }],
          ...wireOps.map((op, i) => [op, replyOf(i)] as const),
        ],
        3,
      );
      expectAllAnswered(results);
    });

    it('fails every op when a 200 batch body is not JSON or not a batch answer', () => {
      // With the headers of a well-formed answer (a multipart boundary), and without any.
      const { headers } = batchAnswerOf(wire, []);
      for (const [body, context] of ['not json', '', '{"unexpected":true}', 'null', '42'].flatMap(
        (b) =>
          [
            [b, undefined],
            [b, { ops: [], headers }],
          ] as const,
      )) {
        const read = dialect.readBatchAnswer(200, body, 3, 'parallel', context);
        expect(read.kind, body).toBe('results');
        if (read.kind !== 'results') continue;
        expect(read.results, body).toHaveLength(3);
        for (const r of read.results) expect(r.ok, body).toBe(false);
      }
    });

    it(`answers a per-op 429 inside a 200 batch as ${subject.opThrottle === 'again' ? 'a retry with its Retry-After' : "the op's own answer"}`, () => {
      const wireOps = three();
      const throttled: OpReply = {
        status: 429,
        headers: { 'retry-after': '7' },
        body: { error: 'slow down' },
      };
      const results = answer(
        wireOps.map((op, i) => [op, i === 1 ? throttled : replyOf(i)] as const),
        3,
      );
      expectAnswered(results[0], 0);
      if (subject.opThrottle === 'again') {
        expect(results[1]).toEqual({ ok: 'again', why: '429', retryAfter: '7' });
      } else {
        expect(results[1]).toMatchObject({ ok: true, status: 429, body: { error: 'slow down' } });
      }
      expectAnswered(results[2], 2);
      expect(dialect.throttleScope ?? 'app').toBe(subject.throttleScope);
    });

    it.each([401, 403])('passes a whole-batch %s on to every op as refused, body as is', (status) => {
      const body = '{"error":"credential refused", "n": 1}';
      expect(dialect.readBatchAnswer(status, body, 3)).toEqual({ kind: 'refused', status, body });
    });

    it.each([400, 404, 413, 422])('treats a whole-batch %s as rejected, body as is', (status) => {
      const body = '{"error":"bad batch"}';
      expect(dialect.readBatchAnswer(status, body, 3)).toEqual({ kind: 'rejected', status, body });
    });

    it.each([
      429, 500, 502, 503, 504,
    ])('never reads a whole-batch %s as per-op results (the engine handles it)', (status) => {
      const { headers, body } = batchAnswerOf(
        wire,
        three().map((op, i) => [op, replyOf(i)] as const),
      );
      expect(dialect.readBatchAnswer(status, body, 3, 'parallel', { ops: [], headers }).kind).not.toBe(
        'results',
      );
    });

    if (subject.carries) {
      const { name: header, value, onWire } = subject.carries;
      it(`carries the ${header} request header inside its op, and only inside that op`, () => {
        expect(dialect.requestHeader(header)).toBe('carry');
        const ops = [opOf(input('PATCH', { headers: { [header]: value } })), opOf(input('PATCH'))];
        const { request } = send(ops);
        expect(onWire(request.body ?? '', 0)?.[header]).toBe(value);
        expect(onWire(request.body ?? '', 1)?.[header]).toBeUndefined();
        expect(request.headers[header]).toBeUndefined();
      });
    } else {
      it('carries no request header inside an op: each is dropped or passes the call through', () => {
        for (const header of ['if-match', 'prefer', 'content-type', 'x-custom', 'accept-language']) {
          expect(dialect.requestHeader(header), header).not.toBe('carry');
        }
        const op = opOf(input('PATCH', { headers: { 'if-match': '"1"' } }));
        expect(op.headers ?? {}).toEqual({});
        expect(send([op]).request.body).not.toContain('if-match');
      });
    }

    if (subject.relays) {
      const { name: header, value } = subject.relays;
      it(`relays the ${header} answer header of an op to that op alone`, () => {
        const wireOps = three();
        const results = answer(
          wireOps.map(
            (op, i) => [op, i === 1 ? { ...replyOf(i), headers: { [header]: value } } : replyOf(i)] as const,
          ),
          3,
        );
        expect(results[1]).toMatchObject({ ok: true, headers: { [header]: value } });
        for (const i of [0, 2]) {
          const r = results[i];
          expect(r?.ok === true ? r.headers?.[header] : 'not ok').toBeUndefined();
        }
        expect(dialect.answerHeaders({ [header]: value })[header]).toBe(value);
      });
    } else {
      it('relays no answer header of an op', () => {
        const wireOps = three();
        const results = answer(
          wireOps.map((op, i) => [op, { ...replyOf(i), headers: { etag: '"1"', location: '/x' } }] as const),
          3,
        );
        for (const r of results) expect(r.ok === true ? (r.headers ?? {}) : 'not ok').toEqual({});
        expect(dialect.answerHeaders({ etag: '"1"', location: '/x' })).toEqual({});
      });
    }

    if (subject.textAnswer) {
      const { reply, text } = subject.textAnswer;
      it('gives a non-JSON op answer back as its text', () => {
        const wireOps = three();
        const results = answer(
          wireOps.map((op, i) => [op, i === 1 ? reply : replyOf(i)] as const),
          3,
        );
        expect(results[1]).toMatchObject({ ok: true, status: reply.status, text });
        expectAnswered(results[0], 0);
        expectAnswered(results[2], 2);
      });
    }

    it("refuses a GET with a body (reason 'body'): it cannot travel inside an op", () => {
      expect(dialect.toOp(input('GET', { body: '{"a":1}' }))).toMatchObject({ reason: 'body' });
    });

    it(`${'refused' in subject.writeWithoutBody ? 'refuses' : 'carries'} a POST without a body`, () => {
      const built = dialect.toOp(input('POST', { body: undefined }));
      if ('refused' in subject.writeWithoutBody) {
        expect(built).toMatchObject({ reason: subject.writeWithoutBody.refused });
      } else {
        if ('passThrough' in built) throw new Error(built.passThrough);
        const [sent] = send([built.op]).wireOps;
        expect(sent?.body).toEqual(subject.writeWithoutBody.payload);
      }
    });

    it('carries a body spliced in as received, not re-serialised', () => {
      const body = '{ "b" : [1, 2.50, "\\u00e9"],\n"a": null }';
      const { request, wireOps } = send([opOf(input('POST', { body }))]);
      expect(request.body).toContain(body);
      expect(wireOps[0]?.body).toEqual(JSON.parse(body));
    });

    it('round-trips its biggest batch (maxOps ops), every op answered in order', () => {
      const methods = Array.from(
        { length: subject.maxOps },
        (_, i) => batchableMethods[i % batchableMethods.length] as Method,
      );
      const calls = methods.map((m, i) =>
        input(m, { target: { appId: subject.scope, path: `${subject.path}/${i}` } }),
      );
      const { wireOps } = send(calls.map(opOf));
      expect(wireOps).toHaveLength(subject.maxOps);
      expect(wireOps.map((op) => op.path)).toEqual(calls.map((c) => c.target.path));
      expect(wireOps.map((op) => op.method)).toEqual(methods);
      const replies = wireOps.map((op, i) => [op, replyOf(i)] as const);
      const results = answer([...replies].reverse(), subject.maxOps);
      expectAllAnswered(results);
    });
  });
}
