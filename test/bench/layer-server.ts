// One layer of the edge's stack, as its own process, for layers.ts: each reads the request body and
// answers `{}` on the next turn (as the proxy answers a held call later, never inside the request
// event). `bare`: node:http alone. `node-server`: @hono/node-server's request listener around a fetch
// callback that writes the answer itself (the "already sent" contract). `hono`: the same through a
// Hono app with one catch-all route — what the proxy's data port was before issue #17's fifth round.
// Hono and node-server are resolved from apps/proxy, the package that depends on them.

import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { repoRoot } from './context.js';

interface Env {
  incoming: IncomingMessage;
  outgoing: ServerResponse;
}
type Fetch = (request: Request, env: Env) => Promise<Response>;
interface NodeServer {
  getRequestListener(fetch: Fetch): RequestListener;
}
interface HonoApp {
  all(path: string, handler: (c: { env: Env }) => Promise<Response>): void;
  fetch: Fetch;
}

const requireFromProxy = createRequire(join(repoRoot(), 'apps/proxy/package.json'));
const BODY = '{}';

function readBody(incoming: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    incoming.on('data', () => {});
    incoming.on('end', () => resolve());
  });
}

function answerNextTurn(outgoing: ServerResponse): void {
  setImmediate(() => {
    outgoing.writeHead(200, { 'content-type': 'application/json', 'content-length': String(BODY.length) });
    outgoing.end(BODY);
  });
}

function listener(layer: string): RequestListener {
  if (layer === 'bare') {
    return (incoming, outgoing) => {
      void readBody(incoming).then(() => answerNextTurn(outgoing));
    };
  }
  const nodeServer = requireFromProxy('@hono/node-server') as NodeServer;
  const { RESPONSE_ALREADY_SENT } = requireFromProxy('@hono/node-server/utils/response') as {
    RESPONSE_ALREADY_SENT: Response;
  };
  const handle = async ({ incoming, outgoing }: Env): Promise<Response> => {
    await readBody(incoming);
    answerNextTurn(outgoing);
    return RESPONSE_ALREADY_SENT;
  };
  if (layer === 'node-server') return nodeServer.getRequestListener((_request, env) => handle(env));
  const { Hono } = requireFromProxy('hono') as { Hono: new () => HonoApp };
  const app = new Hono();
  app.all('*', (c) => handle(c.env));
  return nodeServer.getRequestListener(app.fetch);
}

const server = createServer({ noDelay: true }, listener(process.argv[2] ?? 'bare'));
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
});
process.once('disconnect', () => process.exit(0));
