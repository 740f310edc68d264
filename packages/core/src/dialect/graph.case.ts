// Builders shared by the Graph dialect's tests (graph.test.ts, graph.boundaries.test.ts).
import type { OpInput, OpRequest } from './dialect.js';
import type { graph } from './graph.js';

/** A caller's call as the edge hands it to the dialect: GET-able defaults, `/users/u1` under v1.0. */
export const input = (over: Partial<OpInput> & Pick<OpInput, 'method'>): OpInput => ({
  target: { appId: 'v1.0', path: '/users/u1' },
  query: new URLSearchParams(),
  body: undefined,
  apiVersion: undefined,
  headers: {},
  search: '',
  ...over,
});

/** The op a call became; fails the test when the dialect chose to pass the call through. */
export function op(built: ReturnType<typeof graph.toOp>): OpRequest {
  if ('passThrough' in built) throw new Error(`expected an op, got: ${built.passThrough}`);
  return built.op;
}
