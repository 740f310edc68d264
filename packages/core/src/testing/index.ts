// `@batch-proxy/core/testing`: the real parts tests run against — a throwaway redis-server, the
// manual clock the engine takes in place of real time — the one Scheduler-options builder, a fake
// upstream transport, the ops callers submit and randomness a property test can replay.

export { ManualClock } from '../batcher/clock.js';
export {
  batchAnswerOf,
  type CallAnswer,
  type FakeCall,
  type FakeOp,
  type FakeTransport,
  type FakeTransportOptions,
  type FakeWire,
  fakeTransport,
  googleBatchWire,
  graphWire,
  jsonrpcEntry,
  jsonrpcWire,
  type OpReply,
  talkjsWire,
} from './fake-transport.js';
export { getOp, graphOp, opOf, statusOf } from './ops.js';
export { type PendingOpFields, pendingOp } from './pending-op.js';
export { seededRandom, shuffled } from './random.js';
export { type RedisServer, type StartRedisServerOptions, startRedisServer } from './redis-server.js';
export { schedulerOptions, type TestSchedulerOptions } from './scheduler-options.js';
