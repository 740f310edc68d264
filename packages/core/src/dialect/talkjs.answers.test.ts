// The TalkJS dialect's exact answers at its edges: which batch statuses refuse the credential and
// which reject the batch, what an empty body becomes, and no header a call did not ask for.

import { describe, expect, it } from 'vitest';
import { talkjs } from './talkjs.js';

describe('talkjs readBatchAnswer', () => {
  it('treats 401 and 403 as a refusal of the credential, passed on as the upstream said it', () => {
    expect(talkjs.readBatchAnswer(401, '{"error":"bad key"}', 2)).toEqual({
      kind: 'refused',
      status: 401,
      body: '{"error":"bad key"}',
    });
    expect(talkjs.readBatchAnswer(403, '{"error":"forbidden"}', 2)).toEqual({
      kind: 'refused',
      status: 403,
      body: '{"error":"forbidden"}',
    });
  });

  it('treats any other status but 200 as a rejection of the whole batch', () => {
    for (const status of [400, 404, 413, 418]) {
      expect(talkjs.readBatchAnswer(status, '{"e":1}', 2)).toEqual({
        kind: 'rejected',
        status,
        body: '{"e":1}',
      });
    }
  });

  it('answers an empty refusal or rejection body as {}', () => {
    expect(talkjs.readBatchAnswer(401, '', 1)).toEqual({ kind: 'refused', status: 401, body: '{}' });
    expect(talkjs.readBatchAnswer(413, '', 1)).toEqual({ kind: 'rejected', status: 413, body: '{}' });
  });

  it('decodes a 200 into one result per op, and a body that is not JSON into none', () => {
    expect(talkjs.readBatchAnswer(200, '[[1,201,{"id":"m1"}],[0,200]]', 2)).toEqual({
      kind: 'results',
      results: [
        { ok: true, status: 200, body: {} },
        { ok: true, status: 201, body: { id: 'm1' } },
      ],
    });
    expect(talkjs.readBatchAnswer(200, '[[0,200', 1)).toEqual({
      kind: 'results',
      results: [{ ok: false, reason: 'the batch response is not an array' }],
    });
  });
});

describe('talkjs singleRequest headers', () => {
  it('sets no API version header, not even an empty one, when the call named none', () => {
    expect(
      Object.keys(
        talkjs.singleRequest('app', {
          method: 'GET',
          path: '/users',
          query: {},
          body: undefined,
          apiVersion: undefined,
        }).headers,
      ),
    ).toEqual([]);
    expect(
      talkjs.singleRequest('app', {
        method: 'GET',
        path: '/users',
        query: {},
        body: undefined,
        apiVersion: '2021-02-09',
      }).headers,
    ).toStrictEqual({ 'talkjs-rest-version': '2021-02-09' });
  });
});
