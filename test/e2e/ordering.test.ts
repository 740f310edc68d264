// SPEC §5 through the real process: calls that touch one resource are executed upstream in the
// order the proxy received them, even when they were all waiting in the same window.

import { describe, expect, it } from 'vitest';
import { TALKJS_DIALECTS } from '../harness/talkjs-dialects.js';
import { useProxy } from '../harness/use.js';

const SECRET = 'sk_order';
const AUTH = `Bearer ${SECRET}`;

// Once with the built-in TalkJS module, once with TalkJS written as a dialect file.
describe.each(TALKJS_DIALECTS)('arrival order through the proxy ($name)', ({ env: dialectEnv }) => {
  // A long window: every call below is queued before the first batch leaves.
  const { proxy, upstream } = useProxy(
    { BATCH_WINDOW_MS: '300', LOG_LEVEL: 'warn', ...dialectEnv },
    { upstream: { apps: { app1: SECRET } } },
  );

  const send = (method: string, path: string, body?: unknown) =>
    fetch(`${proxy.url}/v1/app1${path}`, {
      method,
      headers: { authorization: AUTH, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const spaced = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('stores messages POSTed to one conversation in the order they arrived', async () => {
    expect((await send('PUT', '/users/alice', { name: 'Alice' })).status).toBe(200);
    expect((await send('PUT', '/conversations/chat', { participants: ['alice'] })).status).toBe(200);
    const pending: Array<Promise<Response>> = [];
    for (let i = 0; i < 12; i++) {
      pending.push(
        send('POST', '/conversations/chat/messages', [
          { text: `m${i}`, sender: 'alice', type: 'UserMessage' },
        ]),
      );
      // Spacing the sends fixes their arrival order at the proxy; all of them still share one window.
      await spaced(15);
      pending.push(send('GET', `/users/other-${i}`)); // unrelated reads keep filling batches
    }
    const statuses = (await Promise.all(pending)).map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(12);
    const res = await send('GET', '/conversations/chat/messages?limit=100');
    const texts = ((await res.json()) as { data: Array<{ text: string }> }).data.map((m) => m.text).reverse();
    expect(texts).toEqual(Array.from({ length: 12 }, (_, i) => `m${i}`));
    // Each message went in its own batch, and unrelated reads rode along.
    const posts = upstream.executed.filter((op) => op.method === 'POST');
    expect(new Set(posts.map((op) => op.callId)).size).toBe(12);
  });

  it('answers a GET sent just after a PUT of the same user with the PUT applied', async () => {
    const put = send('PUT', '/users/bob', { name: 'Bob v2' });
    await spaced(15);
    const get = send('GET', '/users/bob');
    expect((await put).status).toBe(200);
    expect(await (await get).json()).toMatchObject({ id: 'bob', name: 'Bob v2' });
  });
});
