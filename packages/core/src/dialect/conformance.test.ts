// Every dialect through the same conformance suite (dialect.case.ts), the upstream played by its
// fake wire (testing/fake-transport.ts).

import { readFileSync } from 'node:fs';
import {
  googleBatchWire,
  graphWire,
  jsonrpcEntry,
  jsonrpcWire,
  salesforceWire,
  talkjsWire,
} from '../testing/fake-transport.js';
import { dialectConformance } from './dialect.case.js';
import { fileDialect } from './file/dialect.js';
import { parseDialectFile } from './file/validate.js';
import { googleBatch } from './google-batch.js';
import { graph } from './graph.js';
import { jsonrpcDialect } from './jsonrpc.js';
import { readHttp, readPart, splitParts } from './multipart.js';
import { talkjs } from './talkjs.js';

dialectConformance('talkjs', {
  dialect: talkjs,
  wire: talkjsWire,
  scope: 'app1',
  path: '/users/u1',
  maxOps: 10,
  // A GET's payload is its (empty) query object; a DELETE's `{}`.
  emptyPayload: {},
  // TalkJS has no per-op retry: an op's 429 is that op's answer.
  opThrottle: 'answer',
  throttleScope: 'app',
  writeWithoutBody: { payload: {} },
});

dialectConformance('graph', {
  dialect: graph,
  wire: graphWire,
  scope: 'v1.0',
  path: '/users/u1',
  maxOps: 20,
  emptyPayload: undefined,
  opThrottle: 'again',
  throttleScope: 'credential',
  carries: {
    name: 'if-match',
    value: 'W/"etag-1"',
    onWire: (batchBody, index) =>
      (JSON.parse(batchBody) as { requests: Array<{ headers?: Record<string, string> }> }).requests[index]
        ?.headers,
  },
  relays: { name: 'etag', value: 'W/"etag-2"' },
  textAnswer: {
    reply: {
      status: 200,
      headers: { 'content-type': 'text/plain' },
      body: Buffer.from('id,name\n1,Ada\n', 'utf8').toString('base64'),
    },
    text: 'id,name\n1,Ada\n',
  },
  // Graph refuses a whole batch with a bodiless write in it: such a call goes alone.
  writeWithoutBody: { refused: 'body' },
});

dialectConformance('jsonrpc', {
  dialect: jsonrpcDialect({ writeMethods: ['eth_send*'] }),
  wire: jsonrpcWire,
  scope: '/rpc',
  // The REST-shaped call's path becomes the JSON-RPC method, its body the params (`call`).
  path: 'eth_getBalance',
  maxOps: 100,
  emptyPayload: [],
  // JSON-RPC has no per-entry throttle status: a provider's "limit exceeded" error is the entry's answer.
  opThrottle: 'answer',
  throttleScope: 'app',
  writeWithoutBody: { refused: 'body' },
  methods: ['POST'],
  // Ids of both kinds, the id member first or last: the proxy replaces it wherever it is.
  call: (rest, n) => {
    const id = n % 2 === 0 ? String(n) : JSON.stringify(`caller-${n}`);
    const method = JSON.stringify(rest.target.path);
    const params = rest.body ?? '[]';
    return {
      ...rest,
      method: 'POST',
      target: { appId: '/rpc', path: '/rpc' },
      body:
        rest.method === 'POST' && rest.body === undefined
          ? undefined
          : n % 3 === 0
            ? `{"id":${id},"jsonrpc":"2.0","method":${method},"params":${params}}`
            : `{"jsonrpc":"2.0","method":${method},"params":${params},"id":${id}}`,
    };
  },
  // Every entry's answer is a 200 carrying the response object, the caller's own id put back.
  answer: (reply, op) => ({ status: 200, body: jsonrpcEntry(JSON.parse(op.body ?? '{}').id, reply) }),
});

// TalkJS written as a dialect file (dialects/talkjs.json) passes as the built-in module does.
const talkjsFile = parseDialectFile(
  JSON.parse(readFileSync(new URL('../../../../dialects/talkjs.json', import.meta.url), 'utf8')),
);
if ('error' in talkjsFile) throw new Error(`dialects/talkjs.json: ${talkjsFile.error}`);
dialectConformance('talkjs (dialects/talkjs.json)', {
  dialect: fileDialect(talkjsFile.spec),
  wire: talkjsWire,
  scope: 'app1',
  path: '/users/u1',
  maxOps: 10,
  emptyPayload: {},
  opThrottle: 'answer',
  throttleScope: 'app',
  writeWithoutBody: { payload: {} },
});

// Salesforce Composite, shipped only as a file (dialects/salesforce-composite.json).
const salesforceFile = parseDialectFile(
  JSON.parse(
    readFileSync(new URL('../../../../dialects/salesforce-composite.json', import.meta.url), 'utf8'),
  ),
);
if ('error' in salesforceFile) throw new Error(`dialects/salesforce-composite.json: ${salesforceFile.error}`);
dialectConformance('salesforce-composite (dialects/salesforce-composite.json)', {
  dialect: fileDialect(salesforceFile.spec),
  wire: salesforceWire,
  scope: 'v62.0',
  path: '/sobjects/Account/001R0000000001AAA',
  maxOps: 25,
  emptyPayload: undefined,
  // No subrequest is ever "not executed, send again": the org's limit refuses the whole call (403).
  opThrottle: 'answer',
  throttleScope: 'app',
  carries: {
    name: 'if-match',
    value: '"etag-1"',
    onWire: (batchBody, index) =>
      (JSON.parse(batchBody) as { compositeRequest: Array<{ httpHeaders?: Record<string, string> }> })
        .compositeRequest[index]?.httpHeaders,
  },
  relays: { name: 'location', value: '/services/data/v62.0/sobjects/Account/001R0000000002AAA' },
  writeWithoutBody: { payload: undefined },
});

dialectConformance('google-batch', {
  dialect: googleBatch,
  wire: googleBatchWire,
  scope: 'gmail/v1',
  path: '/users/me/messages/m1',
  maxOps: 100,
  // A part without a body carries none.
  emptyPayload: undefined,
  opThrottle: 'again',
  throttleScope: 'credential',
  carries: {
    name: 'if-match',
    value: '"etag-1"',
    onWire: (batchBody, index) => {
      const boundary = /^--([^\r\n]+)/.exec(batchBody)?.[1] ?? '';
      const part = splitParts(batchBody, boundary)?.[index];
      return part === undefined ? undefined : readHttp(readPart(part).content).headers;
    },
  },
  relays: { name: 'etag', value: '"etag-2"' },
  textAnswer: {
    reply: { status: 200, headers: { 'content-type': 'text/csv' }, body: 'id,name\n1,Ada\n' },
    text: 'id,name\n1,Ada\n',
  },
  // Google runs a bodiless POST (Gmail's messages/{id}/trash): the part has no body.
  writeWithoutBody: { payload: undefined },
});
