// SPEC §4, AUTH_MODE=passthrough: the credential is the EXACT Authorization value. Two callers whose
// values differ only in case, or inside (a doubled space, a tab), never share a batch, and each batch
// carries its callers' value unchanged. The edge app with the real engine and an in-process limiter,
// in front of a real upstream server on loopback that records every batch call it gets.

import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Listening, listen } from '../process/server.js';
import { edgeApp, edgeScheduler, type LoopbackUpstream, loopbackUpstream } from './edge.fixture.js';

/** Each caller's Authorization; `same-1` and `same-2` are the one pair that may (and must) share. */
const CALLERS: ReadonlyArray<readonly [label: string, authorization: string]> = [
  ['same-1', 'Bearer Tok-A'],
  ['same-2', 'Bearer Tok-A'],
  ['token-case', 'Bearer tok-a'],
  ['scheme-case', 'bearer Tok-A'],
  ['all-upper', 'BEARER TOK-A'],
  ['double-space', 'Bearer  Tok-A'],
  ['tab', 'Bearer\tTok-A'],
  ['inner-space', 'Bearer Tok -A'],
];

/** Long enough that every caller's op is queued before the first group leaves. */
const WINDOW_MS = 300;

interface BatchCall {
  readonly authorization: string | undefined;
  readonly paths: string[];
}

let upstream: LoopbackUpstream;
let proxy: Listening;
const batches: BatchCall[] = [];

beforeAll(async () => {
  upstream = await loopbackUpstream((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const ops = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Array<[number, string, string]>;
      batches.push({ authorization: req.headers.authorization, paths: ops.map((op) => op[2]) });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(ops.map(([seq, , path]) => [seq, 200, { path }])));
    });
  });
  const scheduler = edgeScheduler(upstream.client, { windowMs: WINDOW_MS });
  const app = edgeApp(scheduler, {
    upstream: upstream.client,
    logger: pino({ level: 'silent' }),
    metrics: undefined,
    traced: false,
  });
  proxy = await listen(app, { port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  await new Promise<void>((resolve) => proxy.server.close(() => resolve()));
  await upstream.close();
});

describe('passthrough grouping by the exact Authorization value', () => {
  it('never puts callers whose Authorization differs only in case or inner spaces in one batch', async () => {
    const answers = await Promise.all(
      CALLERS.map(async ([label, authorization]) => {
        const res = await fetch(`http://127.0.0.1:${proxy.port}/v1/app1/users/${label}`, {
          headers: { authorization },
        });
        return { label, status: res.status, body: (await res.json()) as unknown };
      }),
    );
    // Every caller got its own op's answer.
    for (const { label, status, body } of answers)
      expect({ label, status, body }).toEqual({
        label,
        status: 200,
        body: { path: `/users/${label}` },
      });

    const sentWith = new Map(CALLERS.map(([label, authorization]) => [`/users/${label}`, authorization]));
    // Each batch ran under exactly the Authorization of every caller whose op it carried.
    for (const batch of batches)
      for (const path of batch.paths)
        expect({ path, sentAs: batch.authorization }).toEqual({
          path,
          sentAs: sentWith.get(path),
        });
    // One batch per distinct value: the identical pair shared one (so the calls did overlap in the
    // window, and a key that folded the others together would have put them in it too).
    expect(batches).toHaveLength(new Set(CALLERS.map(([, a]) => a)).size);
    expect(batches.find((b) => b.paths.includes('/users/same-1'))?.paths.sort()).toEqual([
      '/users/same-1',
      '/users/same-2',
    ]);
  });
});
