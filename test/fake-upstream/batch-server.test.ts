import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { type AnsweredCall, BatchServer, type Codec } from './batch-server.js';
import type { TransportFault } from './fault-plan.js';

/** A codec that marks its answers, so a test sees which writer answered. */
function toyCodec(): Codec & { resets: number } {
  const codec = {
    resets: 0,
    headers: (answer: { headers?: Record<string, string> }) => ({
      'content-type': 'application/json',
      'x-codec': 'toy',
      ...answer.headers,
    }),
    faultAnswer: (status: number, retryAfterSec: number | undefined, body: unknown) => ({
      status,
      headers: retryAfterSec === undefined ? {} : { 'retry-after': String(retryAfterSec) },
      body: body ?? { toyError: status },
    }),
    bug: (message: string) => ({ status: 500, body: { toyBug: message } }),
    reset: () => {
      codec.resets++;
    },
  };
  return codec;
}

interface Rig {
  url: string;
  server: BatchServer;
  codec: ReturnType<typeof toyCodec>;
  /** How many times the work ran. */
  executed: () => number;
  calls: AnsweredCall[];
  /** The fault the next call takes. */
  next: { fault?: TransportFault | undefined };
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function rig(
  options: { latencyMs?: number; bodyLimitBytes?: number; throws?: boolean } = {},
): Promise<Rig> {
  const codec = toyCodec();
  const calls: AnsweredCall[] = [];
  const server = new BatchServer({
    codec,
    bodyLimitBytes: options.bodyLimitBytes ?? 1024,
    latencyMs: options.latencyMs,
    seed: 7,
    onCall: (call) => calls.push(call),
  });
  let executed = 0;
  const next: Rig['next'] = {};
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const { callId } = server.arrive(req, res, req.method ?? 'GET');
    const handle = async () => {
      const { buf, tooLarge } = await server.readBody(req);
      if (tooLarge) return server.reply(res, { status: 413, body: { size: 'too large' } });
      if (options.throws) throw new Error('broken handler');
      await server.serve(res, next.fault, () => {
        executed++;
        server.executedBatch(res, 3);
        return { status: 200, body: { callId, echoed: buf.toString('utf8'), pad: 'x'.repeat(200) } };
      });
    };
    server.guard(res, handle());
  };
  const listening = await server.listen(onRequest, {});
  closers.push(listening.close);
  return { url: listening.url, server, codec, executed: () => executed, calls, next };
}

const post = (url: string, body = '{}') => fetch(url, { method: 'POST', body });

describe('BatchServer', () => {
  it('answers with the codec’s headers and logs the call with its batch size', async () => {
    const r = await rig();
    const res = await post(`${r.url}/batch?x=1`, 'hello');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-codec')).toBe('toy');
    expect(await res.json()).toMatchObject({ callId: 1, echoed: 'hello' });
    expect(r.calls).toEqual([
      { callId: 1, method: 'POST', target: '/batch?x=1', status: 200, size: 3, ms: expect.any(Number) },
    ]);
  });

  it('answers a status fault in the codec’s words without running the work, with Retry-After', async () => {
    const r = await rig();
    r.next.fault = { status: 503, retryAfterSec: 2 };
    const res = await post(r.url);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('2');
    expect(await res.json()).toEqual({ toyError: 503 });
    expect(r.executed()).toBe(0);
  });

  it('runs the work first for an after-execute status fault, and answers the fault’s own body', async () => {
    const r = await rig();
    r.next.fault = { status: 502, afterExecute: true, body: { own: true } };
    const res = await post(r.url);
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ own: true });
    expect(r.executed()).toBe(1);
  });

  it('drops the connection before or after the work as the reset fault says', async () => {
    const r = await rig();
    r.next.fault = { reset: 'before-execute' };
    await expect(post(r.url)).rejects.toThrow();
    expect(r.executed()).toBe(0);
    r.next.fault = { reset: 'after-execute' };
    await expect(post(r.url)).rejects.toThrow();
    expect(r.executed()).toBe(1);
  });

  it('answers HTML with its length for a notJson fault, after running the work', async () => {
    const r = await rig();
    r.next.fault = { notJson: true };
    const res = await post(r.url);
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html');
    expect(res.headers.get('content-length')).toBe(String(text.length));
    expect(text).toContain('<html>');
    expect(r.executed()).toBe(1);
  });

  it('sends half the body and drops the connection for a truncateBody fault', async () => {
    const r = await rig();
    r.next.fault = { truncateBody: true };
    const res = await post(r.url);
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    expect(r.executed()).toBe(1);
  });

  it('holds the answer after the work by default, and the work too with delayBeforeExecute', async () => {
    const r = await rig();
    r.next.fault = { delayMs: 300 };
    const late = post(r.url);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(r.executed()).toBe(1);
    expect((await late).status).toBe(200);

    r.next.fault = { delayMs: 300, delayBeforeExecute: true };
    const held = post(r.url);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(r.executed()).toBe(1);
    expect((await held).status).toBe(200);
    expect(r.executed()).toBe(2);
  });

  it('adds the configured latency to every answer', async () => {
    const r = await rig({ latencyMs: 200 });
    const started = performance.now();
    await (await post(r.url)).arrayBuffer();
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('reads a body past the limit to its end and reports it too large', async () => {
    const r = await rig({ bodyLimitBytes: 10 });
    const res = await post(r.url, 'x'.repeat(11));
    expect(res.status).toBe(413);
    expect(r.executed()).toBe(0);
  });

  it('answers the codec’s 500 when handling a call throws', async () => {
    const r = await rig({ throws: true });
    const res = await post(r.url);
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ toyBug: 'Error: broken handler' });
  });

  it('replays the same random sequences and call numbers after reset, and resets the codec', async () => {
    const r = await rig();
    const first = [r.server.orderRandom(), r.server.faultRandom()];
    await (await post(r.url)).arrayBuffer();
    r.server.reset();
    expect([r.server.orderRandom(), r.server.faultRandom()]).toEqual(first);
    expect(r.codec.resets).toBe(1);
    expect(await (await post(r.url)).json()).toMatchObject({ callId: 1 });
  });
});
