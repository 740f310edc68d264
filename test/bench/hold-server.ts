// The floor for the memory scenario: a bare node:http server (the same Node, the same keep-alive
// connection per call) that reads each request body and never answers. What it costs per held call
// is what any Node proxy pays before it keeps any state of its own.

import { createServer } from 'node:http';

const server = createServer((req) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    // Hold the request and its body, as a queued op would.
    held.push({ req, body: Buffer.concat(chunks).toString() });
  });
});
const held: Array<{ req: unknown; body: string }> = [];
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
});
process.once('disconnect', () => process.exit(0));
