// What the fake JSON-RPC server's methods do, one request object at a time (jsonrpc.org §4–5):
// validation first (-32600), then the method (-32601 unknown, -32602 bad params). A notification
// runs but gets no answer.

export interface RpcState {
  /** Named counters: `counter_add` writes, `counter_get` reads. */
  readonly counters: Map<string, number>;
  /** Bumped by every write, read by `eth_blockNumber`. */
  block: number;
}

export interface Done {
  /** Whether the method ran (an invalid request or an unknown method did not). */
  readonly executed: boolean;
  /** The response object; undefined for a notification. */
  readonly answer: Record<string, unknown> | undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

const error = (id: unknown, code: number, message: string) => ({
  jsonrpc: '2.0',
  id,
  error: { code, message },
});

type Method = (state: RpcState, params: unknown) => { result: unknown } | { code: number; message: string };

const badParams = { code: -32602, message: 'Invalid params' };

const METHODS: Record<string, Method> = {
  eth_blockNumber: (state) => ({ result: `0x${state.block.toString(16)}` }),
  echo: (_, params) => ({ result: params ?? null }),
  counter_get: (state, params) => {
    const [name] = Array.isArray(params) ? params : [];
    if (typeof name !== 'string') return badParams;
    return { result: state.counters.get(name) ?? 0 };
  },
  counter_add: (state, params) => {
    const [name, by] = Array.isArray(params) ? params : [];
    if (typeof name !== 'string' || typeof by !== 'number') return badParams;
    const value = (state.counters.get(name) ?? 0) + by;
    state.counters.set(name, value);
    state.block++;
    return { result: value };
  },
};

export function executeEntry(state: RpcState, entry: unknown): Done {
  if (!isObject(entry) || entry.jsonrpc !== '2.0' || typeof entry.method !== 'string')
    return { executed: false, answer: error(null, -32600, 'Invalid Request') };
  const notification = !Object.hasOwn(entry, 'id');
  const id = entry.id;
  // A broken server's answer: neither result nor error (the proxy must answer that caller 502).
  if (entry.method === 'test_badResult')
    return { executed: true, answer: notification ? undefined : { jsonrpc: '2.0', id } };
  const method = METHODS[entry.method];
  if (!method)
    return { executed: false, answer: notification ? undefined : error(id, -32601, 'Method not found') };
  const outcome = method(state, entry.params);
  if (notification) return { executed: true, answer: undefined };
  if ('result' in outcome) return { executed: true, answer: { jsonrpc: '2.0', id, result: outcome.result } };
  return { executed: false, answer: error(id, outcome.code, outcome.message) };
}
