// The floor for a Node batching proxy, for capacity.ts: node:http in, an undici Pool out, and nothing
// else. Each call is held until 10 are queued for its (app, credential) or the window has passed since
// the first, then all leave as one TalkJS `POST /v1/{appId}/batch` and each caller gets its own op's
// status and body. No validation, limits, retries, metrics or logs: whatever the proxy spends per call
// above this process is the proxy's own work. Arguments: the upstream's URL, the window in ms.

import { createServer, type ServerResponse } from 'node:http';
import { Pool } from 'undici';

const MAX_OPS = 10;
const upstream = new Pool(process.argv[2] ?? 'http://127.0.0.1:1', {
  // As the proxy's UpstreamClient: 64 keep-alive connections, one request at a time on each.
  connections: 64,
  keepAliveTimeout: 30_000,
});
const windowMs = Number(process.argv[3] ?? 10);

interface Held {
  /** The op as TalkJS batch text, less its sequence number: `"PUT","/users/u1",{...}`. */
  op: string;
  res: ServerResponse;
}
interface Group {
  appId: string;
  authorization: string;
  held: Held[];
  timer: NodeJS.Timeout | undefined;
}

// A batch carries one credential, so calls wait per (app, Authorization), as in the proxy.
const groups = new Map<string, Group>();

function answer(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function flush(group: Group): void {
  clearTimeout(group.timer);
  group.timer = undefined;
  const held = group.held;
  group.held = [];
  // Each caller's body is spliced in as received (as the proxy does), never parsed and re-serialised.
  const body = `[${held.map((h, seq) => `[${seq},${h.op}]`).join(',')}]`;
  void upstream
    .request({
      method: 'POST',
      path: `/v1/${group.appId}/batch`,
      headers: { authorization: group.authorization, 'content-type': 'application/json' },
      body,
    })
    .then(async (res) => {
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`batch answered ${res.statusCode}: ${text}`);
      // The upstream may answer the ops in any order: each result names its op by sequence number.
      for (const [seq, status, opBody] of JSON.parse(text) as [number, number, unknown][]) {
        const h = held[seq];
        if (h) answer(h.res, status, JSON.stringify(opBody ?? {}));
      }
    })
    .catch((err: unknown) => {
      // The floor still answers every caller (a failed batch would otherwise leave them hanging).
      for (const h of held)
        if (!h.res.headersSent) answer(h.res, 502, JSON.stringify({ error: String(err) }));
    })
    .finally(() => {
      // An op the batch answer left out gets a 502, not silence.
      for (const h of held) if (!h.res.headersSent) answer(h.res, 502, '{"error":"no result for this op"}');
    });
}

const server = createServer({ noDelay: true }, (req, res) => {
  // `/v1/{appId}/rest`: the batch op's path is what follows the app id.
  const url = req.url ?? '/';
  const slash = url.indexOf('/', 4);
  const appId = url.slice(4, slash);
  const path = url.slice(slash);
  const authorization = req.headers.authorization ?? '';
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const text = chunks.length === 0 ? '{}' : Buffer.concat(chunks).toString();
    const key = `${appId}\n${authorization}`;
    let group = groups.get(key);
    if (!group) {
      group = { appId, authorization, held: [], timer: undefined };
      groups.set(key, group);
    }
    group.held.push({ op: `${JSON.stringify(req.method)},${JSON.stringify(path)},${text}`, res });
    if (group.held.length >= MAX_OPS) flush(group);
    else if (group.timer === undefined) {
      const g = group;
      group.timer = setTimeout(() => flush(g), windowMs);
    }
  });
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
});
process.once('disconnect', () => process.exit(0));
