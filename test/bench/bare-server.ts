// The floor for the capacity scenario: a bare node:http server (the same Node) that reads each request
// body and answers `{}` at once. What it costs per call is what any Node server pays before doing any
// work of its own; the proxy's CPU per call is compared with it (and the CI guard keeps that ratio).

import { createServer } from 'node:http';

const BODY = '{}';
const server = createServer({ noDelay: true }, (req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
    res.end(BODY);
  });
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
});
process.once('disconnect', () => process.exit(0));
