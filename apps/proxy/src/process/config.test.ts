import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

describe('loadConfig', () => {
  it('applies the SPEC §9 defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      PORT: 8080,
      HOST: '0.0.0.0',
      ADMIN_PORT: 9464,
      UPSTREAM_URL: 'https://api.talkjs.com',
      BATCH_WINDOW_MS: 10,
      BATCH_MAX_OPS: 10,
      BATCH_RATE_PER_SEC: 1,
      BATCH_BURST: 500,
      BATCH_OPS_SPEND_REST: false,
      QUEUE_MAX_OPS: 10_000,
      MAX_WAIT_MS: 30_000,
      UPSTREAM_TIMEOUT_MS: 10_000,
      BODY_LIMIT_BYTES: 1_048_576,
      AUTH_MODE: 'passthrough',
      SHUTDOWN_GRACE_MS: 25_000,
      LOG_LEVEL: 'info',
      HEADERS_TIMEOUT_MS: 10_000,
      REQUEST_TIMEOUT_MS: 30_000,
      // Longer than a load balancer's idle timeout (Google Cloud's: 600 s).
      KEEP_ALIVE_TIMEOUT_MS: 620_000,
    });
    expect(c.REDIS_URL).toBeUndefined();
    expect(c.restLimit).toBeUndefined();
  });

  it('reads the engine bounds: Retry-After cap, batch and answer sizes, circuit breaker', () => {
    expect(loadConfig({})).toMatchObject({
      RETRY_AFTER_MAX_MS: 60_000,
      BATCH_MAX_BYTES: 4 * 1_048_576,
      UPSTREAM_MAX_RESPONSE_BYTES: 32 * 1_048_576,
      CIRCUIT_BREAKER_FAILURES: 5,
      CIRCUIT_BREAKER_OPEN_MS: 5_000,
      CIRCUIT_BREAKER_MAX_OPEN_MS: 60_000,
    });
    expect(loadConfig({ CIRCUIT_BREAKER_FAILURES: '0' }).CIRCUIT_BREAKER_FAILURES).toBe(0);
    expect(() =>
      loadConfig({ CIRCUIT_BREAKER_OPEN_MS: '10000', CIRCUIT_BREAKER_MAX_OPEN_MS: '5000' }),
    ).toThrow(/CIRCUIT_BREAKER_MAX_OPEN_MS: must be at least CIRCUIT_BREAKER_OPEN_MS \(10000\)/);
    expect(() => loadConfig({ BATCH_MAX_BYTES: '0' })).toThrow(/BATCH_MAX_BYTES/);
  });

  it('keeps 0 as 0 and treats empty strings as unset', () => {
    const c = loadConfig({ BATCH_WINDOW_MS: '0', REDIS_URL: '' });
    expect(c.BATCH_WINDOW_MS).toBe(0);
    expect(c.REDIS_URL).toBeUndefined();
  });

  it('configures the rest bucket from REST_RATE_PER_SEC and REST_BURST', () => {
    expect(loadConfig({ REST_RATE_PER_SEC: '9', REST_BURST: '600' }).restLimit).toEqual({
      ratePerSec: 9,
      burst: 600,
    });
  });

  it('names every bad variable in one message', () => {
    expect(() => loadConfig({ PORT: 'eighty', BATCH_MAX_OPS: '0', UPSTREAM_URL: 'ftp://x' })).toThrowError(
      /PORT[\s\S]*BATCH_MAX_OPS|BATCH_MAX_OPS[\s\S]*PORT/,
    );
    expect(() => loadConfig({ UPSTREAM_URL: 'ftp://x' })).toThrowError(/UPSTREAM_URL/);
    expect(() => loadConfig({ AUTH_MODE: 'app-token' })).toThrowError(/APP_SECRETS_FILE/);
    expect(() => loadConfig({ REST_BURST: '5' })).toThrowError(/REST_RATE_PER_SEC/);
  });

  it('reads BATCH_DROPPABLE_HEADERS as lower-case names and refuses what is not a header name', () => {
    expect(loadConfig({}).droppableHeaders).toEqual(new Set());
    expect(loadConfig({ BATCH_DROPPABLE_HEADERS: 'X-Tenant, Cookie' }).droppableHeaders).toEqual(
      new Set(['x-tenant', 'cookie']),
    );
    expect(() => loadConfig({ BATCH_DROPPABLE_HEADERS: 'x-tenant, bad name' })).toThrow(
      /BATCH_DROPPABLE_HEADERS: expected header names/,
    );
  });

  it('refuses an UPSTREAM_URL that is not http(s), saying so', () => {
    expect(() => loadConfig({ UPSTREAM_URL: 'ftp://x' })).toThrowError(
      'invalid configuration: UPSTREAM_URL: the scheme must be http or https, not ftp (got "ftp://x")',
    );
    expect(() => loadConfig({ UPSTREAM_URL: 'file:///etc/hosts' })).toThrowError(
      /UPSTREAM_URL: the scheme must be http or https, not file/,
    );
    expect(() => loadConfig({ UPSTREAM_URL: 'api.talkjs.com' })).toThrowError(
      /UPSTREAM_URL: expected an absolute http or https URL, e\.g\. https:\/\/api\.talkjs\.com/,
    );
  });

  it('takes a base path in UPSTREAM_URL, and refuses what the client would drop without a word', () => {
    expect(loadConfig({ UPSTREAM_URL: 'http://gateway:8080/talkjs' }).UPSTREAM_URL).toBe(
      'http://gateway:8080/talkjs',
    );
    expect(() => loadConfig({ UPSTREAM_URL: 'http://gateway/talkjs?x=1' })).toThrowError(
      /UPSTREAM_URL: must not have a query or a fragment/,
    );
    expect(() => loadConfig({ UPSTREAM_URL: 'http://gateway/talkjs#top' })).toThrowError(
      /UPSTREAM_URL: must not have a query or a fragment/,
    );
    // Refused, and the password is not repeated in the message (it goes to the logs).
    let message = '';
    try {
      loadConfig({ UPSTREAM_URL: 'https://user:hunter2@gateway/' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/^invalid configuration: UPSTREAM_URL: must not carry credentials/);
    expect(message).not.toContain('hunter2');
  });

  it('says when UPSTREAM_URL was defaulted to the production API', () => {
    expect(loadConfig({}).upstreamDefaulted).toBe(true);
    expect(loadConfig({ UPSTREAM_URL: 'http://127.0.0.1:1' }).upstreamDefaulted).toBe(false);
  });

  describe('DIALECT', () => {
    it('defaults to talkjs, with its upstream and maximum', () => {
      const c = loadConfig({});
      expect(c.DIALECT).toBe('talkjs');
      expect(c.dialect.name).toBe('talkjs');
      expect([c.UPSTREAM_URL, c.BATCH_MAX_OPS]).toEqual(['https://api.talkjs.com', 10]);
      // SPEC §9's budget defaults are TalkJS's.
      expect([c.BATCH_RATE_PER_SEC, c.BATCH_BURST]).toEqual([1, 500]);
    });

    it('graph: requires a budget (none is safe for every service), its burst a second of it', () => {
      expect(() => loadConfig({ DIALECT: 'graph' })).toThrow(
        /^invalid configuration: BATCH_RATE_PER_SEC: required with DIALECT=graph: Graph's limits differ per service and tenant/,
      );
      const c = loadConfig({ DIALECT: 'graph', BATCH_RATE_PER_SEC: '2.5' });
      expect([c.BATCH_RATE_PER_SEC, c.BATCH_BURST]).toEqual([2.5, 3]);
      expect(loadConfig({ DIALECT: 'graph', BATCH_RATE_PER_SEC: '2', BATCH_BURST: '7' }).BATCH_BURST).toBe(7);
      // Adaptive pacing learns the rate: no budget needed; the pacer's initial rate stands in.
      const paced = loadConfig({ DIALECT: 'graph', PACING: 'adaptive', PACE_MAX_RATE_PER_SEC: '8' });
      expect([paced.BATCH_RATE_PER_SEC, paced.BATCH_BURST]).toEqual([4, 4]);
      // TalkJS's defaults stay its own with adaptive pacing too.
      expect(loadConfig({ PACING: 'adaptive', PACE_MAX_RATE_PER_SEC: '8' }).BATCH_BURST).toBe(500);
    });

    it('graph: the Microsoft Graph dialect, upstream and 20-op maximum by default', () => {
      const c = loadConfig({ DIALECT: 'graph', BATCH_RATE_PER_SEC: '1' });
      expect(c.dialect.name).toBe('graph');
      expect([c.UPSTREAM_URL, c.BATCH_MAX_OPS, c.upstreamDefaulted]).toEqual([
        'https://graph.microsoft.com',
        20,
        true,
      ]);
      const graph = { DIALECT: 'graph', BATCH_RATE_PER_SEC: '1' };
      expect(loadConfig({ ...graph, UPSTREAM_URL: 'http://127.0.0.1:1' }).UPSTREAM_URL).toBe(
        'http://127.0.0.1:1',
      );
      expect(loadConfig({ ...graph, BATCH_MAX_OPS: '5' }).BATCH_MAX_OPS).toBe(5);
    });

    it('jsonrpc: requires a budget, batches 100 by default, builds its writes from JSONRPC_WRITE_METHODS', () => {
      expect(() => loadConfig({ DIALECT: 'jsonrpc' })).toThrow(
        /^invalid configuration: BATCH_RATE_PER_SEC: required with DIALECT=jsonrpc: JSON-RPC servers/,
      );
      const rpc = { DIALECT: 'jsonrpc', BATCH_RATE_PER_SEC: '3' };
      const c = loadConfig(rpc);
      expect([c.dialect.name, c.UPSTREAM_URL, c.BATCH_MAX_OPS, c.BATCH_BURST]).toEqual([
        'jsonrpc',
        'http://127.0.0.1:8545',
        100,
        3,
      ]);
      expect(() => loadConfig({ ...rpc, BATCH_MAX_OPS: '101' })).toThrow(
        /at most 100 for the jsonrpc dialect/,
      );
      const writeOf = (env: Record<string, string>, method: string) => {
        const built = loadConfig(env).dialect.toOp({
          method: 'POST',
          target: { appId: '/', path: '/' },
          query: new URLSearchParams(),
          body: `{"jsonrpc":"2.0","id":1,"method":"${method}"}`,
          apiVersion: undefined,
        });
        return 'op' in built ? built.op.write : built.reason;
      };
      expect(writeOf(rpc, 'eth_sendRawTransaction')).toBe(false);
      const writes = { ...rpc, JSONRPC_WRITE_METHODS: 'eth_send*, personal_sign' };
      expect(writeOf(writes, 'eth_sendRawTransaction')).toBe(true);
      expect(writeOf(writes, 'personal_sign')).toBe(true);
      expect(writeOf(writes, 'eth_call')).toBe(false);
      expect(() => loadConfig({ ...rpc, JSONRPC_WRITE_METHODS: 'a,,b' })).toThrow(
        /JSONRPC_WRITE_METHODS: expected method globs separated by commas/,
      );
      expect(() => loadConfig({ ...rpc, AUTH_MODE: 'app-token', APP_SECRETS_FILE: '/tmp/x.json' })).toThrow(
        /AUTH_MODE: DIALECT=jsonrpc allows passthrough, not app-token/,
      );
    });

    it('refuses a BATCH_MAX_OPS above the dialect maximum and an unknown dialect', () => {
      expect(() => loadConfig({ BATCH_MAX_OPS: '11' })).toThrow(
        /BATCH_MAX_OPS: at most 10 for the talkjs dialect \(got "11"\)/,
      );
      const graph = { DIALECT: 'graph', BATCH_RATE_PER_SEC: '1' };
      expect(loadConfig({ ...graph, BATCH_MAX_OPS: '20' }).BATCH_MAX_OPS).toBe(20);
      expect(() => loadConfig({ ...graph, BATCH_MAX_OPS: '21' })).toThrow(/at most 20 for the graph dialect/);
      expect(() => loadConfig({ DIALECT: 'odata' })).toThrow(/DIALECT/);
    });

    it('google-batch: its upstream, 100 parts (lowered by BATCH_MAX_OPS), a required budget, passthrough auth', () => {
      const google = { DIALECT: 'google-batch', BATCH_RATE_PER_SEC: '2' };
      const c = loadConfig(google);
      expect([c.dialect.name, c.UPSTREAM_URL, c.BATCH_MAX_OPS, c.BATCH_BURST]).toEqual([
        'google-batch',
        'https://www.googleapis.com',
        100,
        2,
      ]);
      expect(loadConfig({ ...google, BATCH_MAX_OPS: '50' }).BATCH_MAX_OPS).toBe(50);
      expect(() => loadConfig({ ...google, BATCH_MAX_OPS: '101' })).toThrow(
        /at most 100 for the google-batch dialect/,
      );
      expect(() => loadConfig({ DIALECT: 'google-batch' })).toThrow(
        /^invalid configuration: BATCH_RATE_PER_SEC: required with DIALECT=google-batch: Google's quotas differ/,
      );
      expect(() =>
        loadConfig({ ...google, AUTH_MODE: 'app-token', APP_SECRETS_FILE: '/nonexistent.json' }),
      ).toThrow(/AUTH_MODE: DIALECT=google-batch allows passthrough, not app-token/);
    });

    it('refuses AUTH_MODE=app-token with graph: app tokens are TalkJS’s', () => {
      expect(() =>
        loadConfig({
          DIALECT: 'graph',
          BATCH_RATE_PER_SEC: '1',
          AUTH_MODE: 'app-token',
          APP_SECRETS_FILE: '/tmp/x.json',
        }),
      ).toThrow(/AUTH_MODE: DIALECT=graph allows passthrough, not app-token \(got "app-token"\)/);
    });
  });
});

describe('loadConfig: adaptive pacing (PACING, PACE_*)', () => {
  it('keeps a fixed rate by default', () => {
    expect(loadConfig({})).toMatchObject({ PACING: 'fixed', pace: undefined });
  });

  it('fills in the pacer defaults from the maximum', () => {
    expect(loadConfig({ PACING: 'adaptive', PACE_MAX_RATE_PER_SEC: '200' }).pace).toEqual({
      maxRatePerSec: 200,
      minRatePerSec: 1,
      initialRatePerSec: 100,
      decreaseFactor: 0.9,
      increaseStep: 4,
      probeIntervalMs: 1000,
    });
    expect(loadConfig({ PACING: 'adaptive', PACE_MAX_RATE_PER_SEC: '10' }).pace?.increaseStep).toBe(1);
  });

  it('reads every PACE_* variable', () => {
    const c = loadConfig({
      PACING: 'adaptive',
      PACE_MAX_RATE_PER_SEC: '50',
      PACE_MIN_RATE_PER_SEC: '2',
      PACE_INITIAL_RATE_PER_SEC: '10',
      PACE_DECREASE_FACTOR: '0.8',
      PACE_INCREASE_STEP: '0.5',
      PACE_PROBE_INTERVAL_MS: '250',
    });
    expect(c.pace).toEqual({
      maxRatePerSec: 50,
      minRatePerSec: 2,
      initialRatePerSec: 10,
      decreaseFactor: 0.8,
      increaseStep: 0.5,
      probeIntervalMs: 250,
    });
  });

  it('gives PACE_MAX_RATE_PER_SEC in batch calls/s, as the README does: the batch bucket is the paced one', () => {
    expect(() => loadConfig({ PACING: 'adaptive' })).toThrow(
      'PACING=adaptive needs PACE_MAX_RATE_PER_SEC (the operator bound, batch calls/s)',
    );
    const readme = readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8');
    const row = readme.split('\n').find((line) => line.startsWith('| `PACE_MAX_RATE_PER_SEC` |'));
    expect(row).toContain('batch calls/s');
  });

  it('refuses to start with a pacer that makes no sense, naming the variable', () => {
    expect(() => loadConfig({ PACING: 'adaptive' })).toThrow(/PACE_MAX_RATE_PER_SEC: PACING=adaptive needs/);
    expect(() => loadConfig({ PACING: 'learned' })).toThrow(/PACING/);
    const bad = (env: Record<string, string>, variable: string) =>
      expect(() => loadConfig({ PACING: 'adaptive', PACE_MAX_RATE_PER_SEC: '100', ...env })).toThrow(
        new RegExp(`invalid configuration: ${variable}:`),
      );
    bad({ PACE_MIN_RATE_PER_SEC: '101' }, 'PACE_MIN_RATE_PER_SEC');
    bad({ PACE_INITIAL_RATE_PER_SEC: '150' }, 'PACE_INITIAL_RATE_PER_SEC');
    bad({ PACE_DECREASE_FACTOR: '1' }, 'PACE_DECREASE_FACTOR');
    bad({ PACE_DECREASE_FACTOR: '0' }, 'PACE_DECREASE_FACTOR');
    bad({ PACE_INCREASE_STEP: '-1' }, 'PACE_INCREASE_STEP');
    bad({ PACE_PROBE_INTERVAL_MS: '0' }, 'PACE_PROBE_INTERVAL_MS');
    bad({ PACE_MAX_RATE_PER_SEC: 'fast' }, 'PACE_MAX_RATE_PER_SEC');
  });
});

describe('ACCESS_LOG', () => {
  it('samples successes by default (one in 100) and takes all, errors or sampled', () => {
    expect(loadConfig({})).toMatchObject({ ACCESS_LOG: 'sampled', ACCESS_LOG_SAMPLE_EVERY: 100 });
    for (const policy of ['all', 'errors', 'sampled'])
      expect(loadConfig({ ACCESS_LOG: policy }).ACCESS_LOG).toBe(policy);
    expect(loadConfig({ ACCESS_LOG_SAMPLE_EVERY: '10' }).ACCESS_LOG_SAMPLE_EVERY).toBe(10);
  });

  it('refuses an unknown policy or a sample rate below 1, naming the variable', () => {
    expect(() => loadConfig({ ACCESS_LOG: 'none' })).toThrowError(/ACCESS_LOG:/);
    expect(() => loadConfig({ ACCESS_LOG_SAMPLE_EVERY: '0' })).toThrowError(/ACCESS_LOG_SAMPLE_EVERY/);
  });
});
