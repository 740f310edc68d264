// Property-based abuse of the real proxy process (fast-check): random methods, request targets
// (encoded, dot segments, very long), headers and bodies (invalid UTF-8, deep JSON, huge numbers),
// well-formed through undici and malformed over raw sockets. The process must never crash, never
// hand one caller another caller's data, and refuse what it refuses with a clear JSON error.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { Client, errors as undiciErrors } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signAppToken } from '../fake-upstream/index.js';
import { type ProxyProcess, startProxyProcess } from '../harness/process.js';
import { useProxy } from '../harness/use.js';
import { exchange, parseResponse } from './raw-http.js';

const KEY1 = 'sk_fuzz_app1';
const KEY2 = 'sk_fuzz_app2_victim';
const APPS = { app1: KEY1, app2: KEY2 };
/** Only the victim (app2, its own key) may ever see this. */
const CANARY = 'VICTIM-CANARY-7f3a9c1e';
const RUNS = Number(process.env.FUZZ_RUNS ?? 600);
const RAW_RUNS = Number(process.env.FUZZ_RAW_RUNS ?? 300);
const TIME_LIMIT_MS = 10_000;
/** FUZZ_SEED=<seed printed by a failing run> replays it. */
const SEED = process.env.FUZZ_SEED === undefined ? {} : { seed: Number(process.env.FUZZ_SEED) };

let pid: number | undefined;

const { proxy, upstream } = useProxy(
  {
    LOG_LEVEL: 'warn',
    BATCH_WINDOW_MS: '2',
    BATCH_RATE_PER_SEC: '10000',
    BATCH_BURST: '10000',
    UPSTREAM_TIMEOUT_MS: '5000',
  },
  { upstream: { apps: APPS }, exitCode: 0 },
);

beforeAll(async () => {
  pid = proxy.child.pid;
  const seed = await fetch(`${upstream.url}/v1/app2/users/victim`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${KEY2}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Victim', custom: { secret: CANARY } }),
  });
  expect(seed.status).toBe(200);
});

/** Still the same process, alive and ready. */
async function expectAlive(p: ProxyProcess, expectedPid: number | undefined): Promise<void> {
  const ready = await fetch(`${p.adminUrl}/readyz`).then(
    async (r) => {
      await r.arrayBuffer();
      return r.status;
    },
    (error: unknown) => String(error),
  );
  expect(ready, `the proxy is gone; logs:\n${p.logs().slice(-4000)}`).toBe(200);
  expect(p.child.exitCode).toBeNull();
  expect(p.child.pid).toBe(expectedPid);
}

/** The victim's own traffic through the same proxy while the fuzzer runs: always its own answer. */
function victimLoop(): { stop(): Promise<{ calls: number; wrong: string[] }> } {
  let stopped = false;
  let calls = 0;
  const wrong: string[] = [];
  const loop = async () => {
    while (!stopped) {
      try {
        const res = await fetch(`${proxy.url}/v1/app2/users/victim`, {
          headers: { authorization: `Bearer ${KEY2}` },
        });
        const text = await res.text();
        calls++;
        if (res.status !== 200 || !text.includes(CANARY)) wrong.push(`${res.status} ${text.slice(0, 200)}`);
      } catch (error) {
        wrong.push(String(error));
      }
    }
  };
  const loops = [loop(), loop()];
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return { calls, wrong };
    },
  };
}

// ---- arbitraries --------------------------------------------------------------------------------

const token = fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@-]{1,16}$/);
const segment = fc.oneof(
  fc.constantFrom(
    'users',
    'conversations',
    'messages',
    'batch',
    'fuzz-u',
    'victim',
    '..',
    '.',
    '%2e%2e',
    '%2E.',
    '.%2e',
    '%2f',
    '%2F..%2F',
    '%5c..%5c',
    '%00',
    '%zz',
    '%',
    '%ff%fe',
    '%c0%ae%c0%ae',
    '~',
    '',
  ),
  token,
  fc.string({ unit: 'binary', maxLength: 8 }).map((s) => encodeURIComponent(s)),
  fc.integer({ min: 200, max: 6000 }).map((n) => 'x'.repeat(n)),
);
const appSegment = fc.oneof(
  fc.constantFrom('app1', 'app2', 'app%31', 'app%32', 'APP1', 'nope', '', '..', '%2e%2e', 'app1%2f..%2fapp2'),
  segment,
);
const query = fc.option(
  fc
    .array(
      fc.tuple(
        fc.stringMatching(/^[A-Za-z0-9%._~+-]{0,8}$/),
        fc.stringMatching(/^[A-Za-z0-9%._~+=-]{0,12}$/),
      ),
      {
        maxLength: 4,
      },
    )
    .map((pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`),
  { nil: '' },
);
const requestPath = fc
  .tuple(
    fc.oneof(
      { weight: 8, arbitrary: fc.tuple(appSegment, fc.array(segment, { maxLength: 5 }), fc.boolean()) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          '/',
          '/v1',
          '/v1/',
          '//v1/app1/users/fuzz-u',
          '/v1//users',
          '/readyz',
          '/v2/app1/users',
        ),
      },
    ),
    query,
  )
  .map(([p, q]) => (typeof p === 'string' ? p : `/v1/${p[0]}/${p[1].join('/')}${p[2] ? '/' : ''}`) + q)
  // Very long, but under Node's 16 KiB header limit: past it the HTTP parser refuses the request
  // before the app sees it (that refusal is checked on its own below).
  .filter((p) => p.length <= 12_000);

const method = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE') },
  { weight: 1, arbitrary: fc.constantFrom('HEAD', 'OPTIONS', 'TRACE') },
  // Other methods Node's parser knows (an unknown one is refused before the app sees it: that
  // refusal is checked on its own below).
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'COPY',
      'LOCK',
      'MOVE',
      'PROPFIND',
      'SEARCH',
      'REPORT',
      'PURGE',
      'QUERY',
      'LINK',
    ),
  },
);

const jwt1 = signAppToken('app1', KEY1, { expiresInSec: 3600 });
const headers = fc
  .record(
    {
      authorization: fc.constantFrom(
        `Bearer ${KEY1}`,
        `Bearer ${jwt1}`,
        'Bearer wrong',
        'Bearer ',
        'Basic Zm9vOmJhcg==',
        `bearer ${KEY1}`,
        KEY1,
      ),
      'content-type': fc.constantFrom(
        'application/json',
        'application/json; charset=utf-8',
        'APPLICATION/JSON',
        'text/plain',
        'application/vnd.api+json',
        'multipart/form-data; boundary=x',
        'application/json;;',
      ),
      'x-request-id': fc.stringMatching(/^[!-~]{1,250}$/),
      'x-batch-bypass': fc.constantFrom('1', '0', 'true'),
      'talkjs-rest-version': fc.constantFrom('2021-02-09', 'garbage', '9999-99-99'),
      accept: fc.constantFrom('application/json', '*/*', 'text/html'),
      traceparent: fc.constantFrom('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'garbage'),
    },
    { requiredKeys: [] },
  )
  .chain((base) =>
    fc
      .dictionary(fc.stringMatching(/^x-[a-z0-9-]{1,16}$/), fc.stringMatching(/^[!-~]{0,40}$/), {
        maxKeys: 3,
      })
      .map((extra) => ({ ...extra, ...base }) as Record<string, string>),
  );

const body = fc.oneof(
  fc.constant(undefined),
  fc.json().map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  fc.integer({ min: 1, max: 100_000 }).map((d) => Buffer.from('['.repeat(d) + ']'.repeat(d))),
  fc
    .integer({ min: 1, max: 50_000 })
    .map((d) => Buffer.from(`{"custom":${'{"a":'.repeat(d)}1${'}'.repeat(d)}}`)),
  fc
    .constantFrom(
      '1e999999',
      '-1e999999',
      '123456789012345678901234567890123456789',
      '{"n":1e400,"m":-0,"k":1e-400}',
      '{"custom":{"n":123456789012345678901234567890}}',
      '[{"text":"hi","type":"SystemMessage"}]',
      '{"name":"x"',
      '"\\ud800"',
      '{"__proto__":{"polluted":true},"name":"p"}',
    )
    .map((s) => Buffer.from(s)),
  fc.integer({ min: 1_048_000, max: 1_049_000 }).map((n) => Buffer.from(`"${'x'.repeat(n)}"`)),
);

const wellFormed = fc.record({ method, path: requestPath, headers, body });

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** A verdict on one answer; undefined when it is fine. */
function problemWith(
  req: { method: string; headers: Record<string, string> },
  res: Reply,
): string | undefined {
  const all = `${res.text}\n${JSON.stringify(res.headers)}`;
  if (all.includes(CANARY)) return 'another caller’s data leaked into the answer';
  if (res.status < 100 || res.status > 599) return `status ${res.status}`;
  if (all.includes('PROXY_INTERNAL')) return 'the proxy failed internally (PROXY_INTERNAL)';
  const noBody = req.method === 'HEAD' || res.status === 204 || res.status === 304;
  if (noBody) return undefined;
  const type = String(res.headers['content-type'] ?? '');
  if (!/^application\/json/.test(type)) return `content-type "${type}" is not JSON`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(res.text);
  } catch {
    return 'the body is not JSON';
  }
  const error = (parsed as { error?: { code?: unknown; message?: unknown; requestId?: unknown } } | null)
    ?.error;
  if (error !== undefined && typeof error === 'object' && error !== null && typeof error.code === 'string') {
    if (!/^PROXY_[A-Z_]+$/.test(error.code)) return `error code ${error.code}`;
    if (res.status < 400) return `a proxy error with status ${res.status}`;
    if (typeof error.message !== 'string' || error.message.length === 0) return 'an error without message';
    if (typeof error.requestId !== 'string') return 'an error without requestId';
  }
  const sentId = req.headers['x-request-id'];
  if (sentId !== undefined && sentId.length <= 200 && res.headers['x-request-id'] !== sentId) {
    return `x-request-id not echoed (${String(res.headers['x-request-id'])})`;
  }
  return undefined;
}

describe('fuzzing the real proxy process', () => {
  it('answers every well-formed request with JSON, never crashes, never leaks', async () => {
    const newClient = () => new Client(proxy.url, { headersTimeout: 15_000, bodyTimeout: 15_000 });
    let client = newClient();
    const victim = victimLoop();
    let sent = 0;
    let clientRefused = 0;
    let previous = 'none';
    let previousWasLarge = false;
    const statuses = new Map<number, number>();
    try {
      await fc.assert(
        fc.asyncProperty(wellFormed, async (req) => {
          const before = previous;
          if (previousWasLarge) {
            // The proxy may drop a connection after answering before a large upload was read
            // (413, or an early upstream answer on pass-through), without `Connection: close`:
            // failures.test.ts shows it. The next request starts on a fresh connection.
            await client.close().catch(() => {});
            client = newClient();
          }
          previousWasLarge = (req.body?.length ?? 0) > 64 * 1024;
          previous = `${req.method} ${req.path.slice(0, 100)} body ${req.body?.length ?? 'none'} ${JSON.stringify(req.headers).slice(0, 300)}`;
          let res: Reply;
          try {
            const r = await client.request({
              method: req.method,
              path: req.path,
              headers: req.headers,
              body: req.body ?? null,
            });
            const text = await r.body.text();
            res = { status: r.statusCode, headers: r.headers, text };
          } catch (error) {
            // undici's own validation (e.g. a body on a method it refuses): not a request we sent.
            if (error instanceof undiciErrors.InvalidArgumentError) {
              clientRefused++;
              return;
            }
            throw new Error(
              `no answer to ${req.method} ${req.path.slice(0, 200)}: ${String(error)} (the request before: ${before})`,
            );
          }
          sent++;
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          const problem = problemWith(req, res);
          if (problem) {
            throw new Error(
              `${problem}: ${req.method} ${req.path.slice(0, 200)} -> ${res.status} ${res.text.slice(0, 300)}`,
            );
          }
          expect(proxy.child.exitCode).toBeNull();
        }),
        { ...SEED, numRuns: RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: false },
      );
    } finally {
      await client.close();
      const v = await victim.stop();
      console.log(
        `fuzz: ${sent} requests answered (${clientRefused} refused by undici itself), statuses ${JSON.stringify(
          Object.fromEntries([...statuses].sort(([a], [b]) => a - b)),
        )}; victim calls ${v.calls}, wrong ${v.wrong.length}`,
      );
      expect(v.wrong).toEqual([]);
      expect(v.calls).toBeGreaterThan(0);
    }
    expect(sent).toBeGreaterThan(Math.min(RUNS, 100) / 2);
    // Nothing ran under the victim's key but the victim's own reads (and its seeding).
    const underVictimKey = upstream.executed.filter((e) => e.credential === `Bearer ${KEY2}`);
    expect(underVictimKey.every((e) => e.path === '/users/victim' && e.appId === 'app2')).toBe(true);
    await expectAlive(proxy, pid);
  });

  const crlf = fc.oneof(
    { weight: 7, arbitrary: fc.constant('\r\n') },
    { weight: 1, arbitrary: fc.constant('\n') },
  );
  const rawLine = fc.oneof(
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
    {
      weight: 5,
      arbitrary: fc
        .tuple(
          fc.oneof(
            { weight: 3, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH') },
            { weight: 1, arbitrary: fc.constantFrom('get', 'G ET', '', 'CONNECT', 'PRI', 'GET\0') },
          ),
          fc.oneof(
            { weight: 4, arbitrary: requestPath },
            fc.constantFrom(
              'http://evil.example/v1/app1/users/x',
              '*',
              '/v1/app1/users/x y',
              '/v1/app1/users/\x7f',
              '/v1/app2/users/victim',
              'evil.example:443',
            ),
          ),
          fc.oneof(
            { weight: 6, arbitrary: fc.constant('HTTP/1.1') },
            {
              weight: 1,
              arbitrary: fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/0.9', 'http/1.1', '', 'HTTP/1.10'),
            },
          ),
        )
        .map(([m, t, v]) => `${m} ${t} ${v}`),
    },
  );
  const rawHeader = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.constantFrom(
        `Authorization: Bearer ${KEY1}`,
        'Content-Type: application/json',
        'X-Batch-Bypass: 1',
        'Content-Length: 5',
        'Content-Length: 0',
        'Transfer-Encoding: chunked',
        'Expect: 100-continue',
        'Connection: keep-alive, X-Named',
        'X-Named: hop',
      ),
    },
    fc.constantFrom(
      'Host: a\r\nHost: b',
      'Content-Length: -1',
      'Content-Length: 1e3',
      'Content-Length: 5, 6',
      'Content-Length: 99999999999999999999',
      'Transfer-Encoding: gzip, chunked',
      'Transfer-Encoding: chunked, identity',
      'Transfer-Encoding : chunked',
      'Connection: upgrade',
      'Upgrade: websocket',
      'X-Fold: a\r\n b',
      'NoColonHeader',
      ' Leading: space',
      'X-Nul: a\0b',
      'X-Bare-LF: a\nb',
      `Authorization: Bearer ${KEY1}\r\nAuthorization: Bearer ${KEY2}x`,
    ),
    fc
      .tuple(
        fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}$/),
        fc.oneof(
          { weight: 4, arbitrary: fc.stringMatching(/^[ -~]{0,30}$/) },
          { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
        ),
      )
      .map(([n, v]) => `${n}: ${v}`),
  );
  const rawBody = fc.oneof(
    fc.constant(''),
    fc.json(),
    fc.string({ unit: 'binary', maxLength: 100 }),
    fc.constantFrom(
      '5\r\nhello\r\n0\r\n\r\n',
      'zz\r\nhello\r\n0\r\n\r\n',
      '5;ext=1\r\nhello\r\n0\r\n\r\n',
      'ffffffffffff\r\n',
      '0\r\n\r\nGET /v1/app2/users/victim HTTP/1.1\r\nHost: x\r\n\r\n',
    ),
  );
  /** How the body is framed: mostly right, sometimes not at all (trailing bytes become a 2nd request). */
  const framing = fc.constantFrom('length', 'length', 'chunked', 'none');
  const rawRequest = fc
    .tuple(rawLine, fc.boolean(), fc.array(rawHeader, { maxLength: 3 }), crlf, fc.boolean(), rawBody, framing)
    .map(([line, host, hs, eol, close, b, frame]) => {
      const bytes = Buffer.from(b, 'latin1');
      const framed: string[] = [];
      let payload = bytes;
      if (bytes.length > 0 && frame === 'length') framed.push(`Content-Length: ${bytes.length}`);
      if (bytes.length > 0 && frame === 'chunked') {
        framed.push('Transfer-Encoding: chunked');
        payload = Buffer.concat([
          Buffer.from(`${bytes.length.toString(16)}\r\n`),
          bytes,
          Buffer.from('\r\n0\r\n\r\n'),
        ]);
      }
      const lines = [line, ...(host ? ['Host: proxy.test'] : []), ...framed, ...hs];
      const head = [...lines, ...(close ? ['Connection: close'] : [])].join(eol);
      return Buffer.concat([Buffer.from(`${head}${eol}${eol}`, 'latin1'), payload]);
    });

  it('survives malformed HTTP on raw sockets: no crash, no hang, no 500, no leak', async () => {
    let answered = 0;
    const firstLines = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(rawRequest, async (bytes) => {
        const ex = await exchange(proxy.url, bytes, { endAfterMs: 150, timeoutMs: 4000 });
        const text = ex.data.toString('latin1');
        const shown = JSON.stringify(bytes.toString('latin1').slice(0, 300));
        if (!ex.closed) throw new Error(`the proxy kept a finished exchange open: ${shown}`);
        if (text.includes(CANARY)) throw new Error(`leak: ${shown}`);
        if (text.includes('PROXY_INTERNAL'))
          throw new Error(`internal error: ${shown} -> ${text.slice(0, 300)}`);
        if (text.length > 0) {
          answered++;
          const first = /^HTTP\/1\.1 (\d{3})/.exec(text);
          if (!first)
            throw new Error(`not an HTTP answer: ${shown} -> ${JSON.stringify(text.slice(0, 100))}`);
          const status = Number(first[1]);
          // Refused by Node's HTTP parser (no body) or answered by the app (a JSON body).
          const key = `${first[1]}${/\r\ncontent-type: application\/json/i.test(text) ? '' : ' (parser)'}`;
          firstLines.set(key, (firstLines.get(key) ?? 0) + 1);
          if (status === 500) throw new Error(`500: ${shown} -> ${text.slice(0, 300)}`);
        }
        expect(proxy.child.exitCode).toBeNull();
      }),
      { ...SEED, numRuns: RAW_RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: false },
    );
    console.log(
      `raw fuzz: ${answered} answered; first statuses ${JSON.stringify(Object.fromEntries(firstLines))}`,
    );
    await expectAlive(proxy, pid);
  });

  it('answers HTTP-level garbage with a JSON 400 (a proxy-generated error is JSON)', async () => {
    for (const garbage of ['GARBAGE\r\n\r\n', 'GET /v1/app1/users/x HTTP/1.1\r\nNoColon\r\n\r\n']) {
      const ex = await exchange(proxy.url, garbage, { timeoutMs: 3000 });
      const res = parseResponse(ex.data);
      expect(res?.status, ex.data.toString('latin1')).toBe(400);
      expect(res?.headers['content-type']?.[0] ?? '').toMatch(/^application\/json/);
      expect(JSON.parse(res?.body.toString('utf8') ?? 'null')).toMatchObject({
        error: { code: expect.stringMatching(/^PROXY_/), message: expect.any(String) },
      });
    }
    await expectAlive(proxy, pid);
  });
});

describe('a hostile upstream', () => {
  let hostile: Server;
  let viaHostile: ProxyProcess;
  const DEPTH = 200_000;

  beforeAll(async () => {
    // Valid JSON, but nested deeper than JSON.stringify can walk (JSON.parse copes, it is iterative).
    hostile = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let ops: Array<[number, string, string]> = [];
        try {
          ops = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Array<[number, string, string]>;
        } catch {
          // not a batch call
        }
        const results = ops.map(([seq, , path]) =>
          path.endsWith('/deep')
            ? `[${seq},200,${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}]`
            : `[${seq},200,${JSON.stringify({ id: path })}]`,
        );
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(`[${results.join(',')}]`);
      });
    });
    await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve));
    viaHostile = await startProxyProcess({
      UPSTREAM_URL: `http://127.0.0.1:${(hostile.address() as AddressInfo).port}`,
      LOG_LEVEL: 'warn',
      BATCH_WINDOW_MS: '20',
    });
  });

  afterAll(async () => {
    await viaHostile?.stop('SIGKILL');
    await new Promise<void>((resolve) => {
      hostile?.close(() => resolve());
      hostile?.closeAllConnections();
    });
  });

  it('survives a batch answer nested too deep to re-serialise, and answers every caller', async () => {
    const hostilePid = viaHostile.child.pid;
    const get = (path: string) =>
      fetch(`${viaHostile.url}/v1/app1${path}`, { headers: { authorization: `Bearer ${KEY1}` } }).then(
        async (r) => ({ status: r.status, text: await r.text() }),
        (error: unknown) => ({ status: 0, text: String(error) }),
      );
    const [deep, plain] = await Promise.all([get('/users/deep'), get('/users/plain')]);
    await expectAlive(viaHostile, hostilePid);
    expect(plain.status, plain.text).toBe(200);
    expect(JSON.parse(plain.text)).toEqual({ id: '/users/plain' });
    // Either relayed or refused with a JSON 502; never a dropped connection or a dead process.
    expect([200, 502], deep.text.slice(0, 200)).toContain(deep.status);
  });
});
