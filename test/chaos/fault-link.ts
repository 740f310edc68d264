// A small TCP fault proxy for the chaos tests: it sits between one client (a proxy replica) and
// one server (Redis) on loopback and can make the network between them misbehave on demand:
// - `latencyMs`: every chunk, in either direction, is delivered this much later (order kept);
// - `cutMidCommand(n)`: the next `n` connections that carry a command are cut after the command
//   reached the server and before its reply reaches the client (the client never learns its fate);
// - `partition()` / `heal()`: a black hole — open connections and new ones stay open but carry
//   nothing (a partition times out, it does not reset); healing closes the black-holed ones so the
//   client reconnects.
// One link per replica, so one replica can be partitioned while the others still reach Redis.

import { connect, createServer, type Server, type Socket } from 'node:net';

interface Pair {
  client: Socket;
  server: Socket | undefined;
  /** Chunks from the client that arrived before the server socket connected. */
  early: Buffer[];
  blackholed: boolean;
  /** Cut this pair when the server's next reply arrives (the command it answers was delivered). */
  cutOnReply: boolean;
}

export interface FaultLinkStats {
  connections: number;
  /** Connections cut between a command and its reply. */
  cutMidCommand: number;
  /** Bytes client → server and server → client that were delivered. */
  up: number;
  down: number;
}

export class FaultLink {
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly #pairs = new Set<Pair>();
  #latencyMs = 0;
  #cutBudget = 0;
  #partitioned = false;
  #port = 0;
  readonly stats: FaultLinkStats = { connections: 0, cutMidCommand: 0, up: 0, down: 0 };
  /** Called with every chunk delivered from the client to the server (after any latency). */
  onUp: ((chunk: Buffer) => void) | undefined;
  /** Resolvers waiting for the cut budget to be spent. */
  #cutWaiters: Array<() => void> = [];

  private constructor(target: { host: string; port: number }) {
    this.#target = target;
    this.#server = createServer((client) => this.#accept(client));
  }

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<FaultLink> {
    const link = new FaultLink({ host: targetHost, port: targetPort });
    await new Promise<void>((resolve, reject) => {
      link.#server.once('error', reject);
      link.#server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = link.#server.address();
    link.#port = typeof address === 'object' && address ? address.port : 0;
    return link;
  }

  get port(): number {
    return this.#port;
  }

  /** The link as a Redis URL (for REDIS_URL). */
  get url(): string {
    return `redis://127.0.0.1:${this.#port}`;
  }

  /** The link as an HTTP base URL (for UPSTREAM_URL). */
  get httpUrl(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Open client connections (what the replica holds through this link). */
  get open(): number {
    return this.#pairs.size;
  }

  set latencyMs(ms: number) {
    this.#latencyMs = ms;
  }

  get latencyMs(): number {
    return this.#latencyMs;
  }

  /**
   * Cuts the next `n` connections that carry a command, mid-command; resolves when all `n` were cut
   * (or rejects after `timeoutMs`).
   */
  cutMidCommand(n: number, timeoutMs = 10_000): Promise<void> {
    this.#cutBudget += n;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`only ${this.stats.cutMidCommand} mid-command cuts within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#cutWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** From now on nothing crosses the link (open connections hang, new ones are accepted and hang). */
  partition(): void {
    this.#partitioned = true;
    for (const pair of this.#pairs) pair.blackholed = true;
  }

  /** Ends a partition: black-holed connections are closed (the client reconnects), new ones flow. */
  heal(): void {
    this.#partitioned = false;
    for (const pair of [...this.#pairs]) if (pair.blackholed) this.#close(pair);
  }

  get partitioned(): boolean {
    return this.#partitioned;
  }

  async close(): Promise<void> {
    for (const pair of [...this.#pairs]) this.#close(pair);
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #connectionWaiters: Array<() => void> = [];

  /** Resolves when the client opens its next connection through the link (e.g. a reconnect). */
  nextConnection(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no new connection within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#connectionWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #accept(client: Socket): void {
    this.stats.connections++;
    for (const wake of this.#connectionWaiters.splice(0)) wake();
    const pair: Pair = {
      client,
      server: undefined,
      early: [],
      blackholed: this.#partitioned,
      cutOnReply: false,
    };
    this.#pairs.add(pair);
    client.setNoDelay(true);
    client.on('error', () => this.#close(pair));
    client.on('close', () => this.#close(pair));
    client.on('data', (chunk: Buffer) => {
      if (pair.blackholed) return;
      if (this.#cutBudget > 0 && !pair.cutOnReply) {
        this.#cutBudget--;
        pair.cutOnReply = true;
      }
      this.#later(() => {
        if (!this.#pairs.has(pair) || pair.blackholed) return;
        this.stats.up += chunk.length;
        if (pair.server?.readyState === 'open') pair.server.write(chunk);
        else pair.early.push(chunk);
        this.onUp?.(chunk);
      });
    });
    if (pair.blackholed) return;
    const server = connect(this.#target.port, this.#target.host);
    pair.server = server;
    server.setNoDelay(true);
    server.on('connect', () => {
      for (const chunk of pair.early.splice(0)) server.write(chunk);
    });
    server.on('error', () => this.#close(pair));
    server.on('close', () => this.#close(pair));
    server.on('data', (chunk: Buffer) => {
      if (pair.blackholed) return;
      if (pair.cutOnReply) {
        // The command reached Redis (it is answering it); its reply never reaches the client.
        this.stats.cutMidCommand++;
        this.#close(pair);
        if (this.#cutBudget === 0 && !this.#anyCutPending()) {
          for (const wake of this.#cutWaiters.splice(0)) wake();
        }
        return;
      }
      this.#later(() => {
        if (!this.#pairs.has(pair) || pair.blackholed) return;
        this.stats.down += chunk.length;
        client.write(chunk);
      });
    });
  }

  #anyCutPending(): boolean {
    for (const pair of this.#pairs) if (pair.cutOnReply) return true;
    return false;
  }

  /** Delivers in order: a chunk never overtakes one queued before it, whatever the latency now. */
  #queue: Array<{ due: number; fn: () => void }> = [];
  #timer: NodeJS.Timeout | undefined;

  #later(fn: () => void): void {
    if (this.#latencyMs <= 0 && this.#queue.length === 0) {
      fn();
      return;
    }
    this.#queue.push({ due: performance.now() + this.#latencyMs, fn });
    this.#pump();
  }

  #pump(): void {
    if (this.#timer !== undefined) return;
    const head = this.#queue[0];
    if (!head) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        const now = performance.now();
        while (this.#queue[0] && (this.#queue[0].due <= now + 0.5 || this.#latencyMs <= 0)) {
          this.#queue.shift()?.fn();
        }
        this.#pump();
      },
      Math.max(0, head.due - performance.now()),
    );
  }

  #close(pair: Pair): void {
    if (!this.#pairs.delete(pair)) return;
    // A reset, as a cut cable or a middlebox dropping the flow looks to both ends.
    pair.client.resetAndDestroy();
    pair.server?.resetAndDestroy();
  }
}
