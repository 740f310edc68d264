import type { RequestListener } from 'node:http';
import { describe, expect, it } from 'vitest';
import { close, listen } from './server.js';

const ok: RequestListener = (_req, res) => res.end('ok');

describe('listen', () => {
  it('keeps idle client connections longer than a load balancer in front does, unless told', async () => {
    const defaults = await listen(ok, { port: 0, host: '127.0.0.1' });
    const told = await listen(ok, { port: 0, host: '127.0.0.1', keepAliveTimeoutMs: 5_000 });
    try {
      expect(defaults.server.keepAliveTimeout).toBe(620_000);
      expect(told.server.keepAliveTimeout).toBe(5_000);
    } finally {
      await close(defaults.server, 0);
      await close(told.server, 0);
    }
  });
});
