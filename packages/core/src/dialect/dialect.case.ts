// The conformance suite every BatchDialect passes (conformance.test.ts), as limiter.case.ts is for
// the limiters: the dialect builds the batch, the upstream's side is played by the dialect's fake
// wire (testing/fake-transport.ts: decodeBatch/encodeBatch), and the answer is read back through
// `readBatchAnswer`. Where the dialects differ by design, the difference is a field of the subject.

import { describe, expect, it } from 'vitest';
import { batchAnswerOf, type FakeOp, type OpReply } from '../testing/fake-transport.js';
import { batchableMethods, type Method, type OpInput, type OpRequest, type OpResult } from './dialect.js';
import type { DialectSubject } from './dialect-subject.js';

export type { DialectSubject } from './dialect-subject.js';

export function dialectConformance(name: string, subject: DialectSubject): void {
  const { dialect, wire } = subject;

  const methods = subject.methods ?? batchableMethods;
  let calls = 0;

  /** A REST-shaped call, as the TalkJS and Graph dialects take it. */
  const restInput = (method: Method, over: Partial<OpInput> = {}): OpInput => ({
    method,
    target: { appId: subject.scope, path: subject.path },
    query: new URLSearchParams(),
    body: method === 'POST' || method === 'PUT' || method === 'PATCH' ? `{"method":"${method}"}` : undefined,
    apiVersion: undefined,
    headers: {},
    search: '',
    ...over,
  });

  /** The same call in the dialect's own form (`subject.call`). */
  const input = (method: Method, over: Partial<OpInput> = {}): OpInput => {
    const rest = restInput(method, over);
    return subject.call ? subject.call(rest, calls++) : rest;
  };

  /** The ops of the batch last sent: the context its answer is read with. */
  let sent: readonly OpRequest[] = [];

  const opOf = (call: OpInput): OpRequest => {
    const built = dialect.toOp(call);
    if ('passThrough' in built) throw new Error(`expected an op, got: ${built.passThrough}`);
    return built.op;
  };

  /** Builds the batch of `ops` and decodes it as the upstream does. */
  const send = (ops: readonly OpRequest[]) => {
    sent = ops;
    const request = dialect.batchRequest(subject.scope, ops);
    expect(request.method).toBe('POST');
    expect(wire.isBatch(request)).toBe(true);
    return { request, wireOps: wire.decodeBatch(request.body ?? '') };
  };

  /** The upstream's 200 answer carrying `replies` (in the order given), read back for `count` ops. */
  const answer = (replies: ReadonlyArray<readonly [FakeOp, OpReply]>, count: number): OpResult[] => {
    // The answer's headers go with it: a multipart answer names its boundary there (Google).
    const { headers, body } = batchAnswerOf(wire, replies);
    const read = dialect.readBatchAnswer(200, body, count, undefined, { ops: sent, headers });
    if (read.kind !== 'results') throw new Error(`expected results, got ${JSON.stringify(read)}`);
    expect(read.results).toHaveLength(count);
    return read.results;
  };

  /** Op i's reply: a status and a body of its own, so a mix-up shows. */
  const replyOf = (i: number): OpReply => ({ status: 200 + (i % 7), body: { answer: i } });

  /** What op i's caller gets for `reply` (`subject.answer`, else the reply's status and body). */
  const expected = (reply: OpReply, i: number) => {
    const op = sent[i];
    if (subject.answer && op) return { ok: true, ...subject.answer(reply, op) };
    return { ok: true, status: reply.status, body: reply.body };
  };

  const expectAnswered = (result: OpResult | undefined, i: number) =>
    expect(result).toMatchObject(expected(replyOf(i), i));

  const expectAllAnswered = (results: readonly OpResult[]) => {
    for (const [i, r] of results.entries()) expectAnswered(r, i);
  };

  /** Three ops (GET, POST, DELETE) sent and decoded. */
  const three = () => send(['GET', 'POST', 'DELETE'].map((m) => opOf(input(m as Method)))).wireOps;

  describe(`${name} (dialect conformance)`, () => {
    it('names its own maxOps', () => {
      expect(dialect.maxOps).toBe(subject.maxOps);
    });

    it.each(methods)('round-trips a %s: method, path and body on the wire, its answer back', (method) => {
      const rest = restInput(method);
      const { wireOps } = send([opOf(subject.call ? subject.call(rest, calls++) : rest)]);
      expect(wireOps).toHaveLength(1);
      const [onWire] = wireOps as [FakeOp];
      expect(onWire.method).toBe(method);
      expect(onWire.path).toBe(subject.path);
      expect(onWire.body).toEqual(rest.body === undefined ? subject.emptyPayload : JSON.parse(rest.body));
      const reply = { status: 201, body: { done: method } };
      const [result] = answer([[onWire, reply]], 1);
      expect(result).toMatchObject(expected(reply, 0));
    });

    const refused = batchableMethods.filter((m) => !methods.includes(m));
    if (refused.length > 0) {
      it.each(refused)("refuses a %s (reason 'method'): it batches no such call", (method) => {
        expect(dialect.toOp(restInput(method))).toMatchObject({ reason: 'method' });
      });
    }

    it('carries every method side by side in one batch, in sequence order', () => {
      const each = methods.map((m) => input(m));
      const { wireOps } = send(each.map(opOf));
      expect(wireOps.map((op) => op.method)).toEqual([...methods]);
      expect(new Set(wireOps.map((op) => String(op.id))).size).toBe(each.length);
      const results = answer(
        wireOps.map((op, i) => [op, replyOf(i)] as const),
        each.length,
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
        expect(results[1]).toMatchObject(expected(throttled, 1));
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

    if (methods.includes('GET')) {
      it("refuses a GET with a body (reason 'body'): it cannot travel inside an op", () => {
        expect(dialect.toOp(input('GET', { body: '{"a":1}' }))).toMatchObject({ reason: 'body' });
      });
    }

    it(`${'refused' in subject.writeWithoutBody ? 'refuses' : 'carries'} a POST without a body`, () => {
      const built = dialect.toOp(input('POST', { body: undefined }));
      if ('refused' in subject.writeWithoutBody) {
        expect(built).toMatchObject({ reason: subject.writeWithoutBody.refused });
      } else {
        if ('passThrough' in built) throw new Error(built.passThrough);
        const [onWire] = send([built.op]).wireOps;
        expect(onWire?.body).toEqual(subject.writeWithoutBody.payload);
      }
    });

    it('carries a body spliced in as received, not re-serialised', () => {
      const body = '{ "b" : [1, 2.50, "\\u00e9"],\n"a": null }';
      const { request, wireOps } = send([opOf(input('POST', { body }))]);
      expect(request.body).toContain(body);
      expect(wireOps[0]?.body).toEqual(JSON.parse(body));
    });

    it('round-trips its biggest batch (maxOps ops), every op answered in order', () => {
      const each = Array.from({ length: subject.maxOps }, (_, i) => methods[i % methods.length] as Method);
      const paths = each.map((_, i) => `${subject.path}/${i}`);
      const built = each.map((m, i) =>
        input(m, { target: { appId: subject.scope, path: paths[i] as string } }),
      );
      const { wireOps } = send(built.map(opOf));
      expect(wireOps).toHaveLength(subject.maxOps);
      expect(wireOps.map((op) => op.path)).toEqual(paths);
      expect(wireOps.map((op) => op.method)).toEqual(each);
      const replies = wireOps.map((op, i) => [op, replyOf(i)] as const);
      const results = answer([...replies].reverse(), subject.maxOps);
      expectAllAnswered(results);
    });

    // The byte cap (BATCH_MAX_BYTES, or a dialect file's maxBytes) counts the ops' payloads: the
    // envelope around them must stay small and bounded per op, or the upstream's own request limit
    // would be passed by batches the cap let through.
    it('keeps its biggest batch of full payloads within their bytes plus a bounded envelope per op', () => {
      const body = JSON.stringify({ text: 'x'.repeat(2_000) });
      const ops = Array.from({ length: subject.maxOps }, (_, i) =>
        opOf(input('POST', { body, target: { appId: subject.scope, path: `${subject.path}/${i}` } })),
      );
      const payload = ops.reduce((n, op) => n + (op.body?.length ?? 0), 0);
      expect(payload).toBeGreaterThanOrEqual(subject.maxOps * body.length);
      const { request } = send(ops);
      const bytes = Buffer.byteLength(request.body ?? '');
      // Every caller's text is on the wire (a dialect may shorten the op's own parts: JSON-RPC's id).
      expect(bytes).toBeGreaterThanOrEqual(subject.maxOps * body.length);
      expect(bytes).toBeLessThanOrEqual(payload + subject.maxOps * ENVELOPE_PER_OP + ENVELOPE_PER_OP);
    });
  });
}

/** The most bytes a dialect may add around one op's payload on the wire (its method, path, id…). */
const ENVELOPE_PER_OP = 512;
