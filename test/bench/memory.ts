// Scenario 4 — memory: 10,000 calls held at once. The batch budget is nearly nil (one batch call every
// 20 s, burst 1) and the deadline long, so every call (each on its own connection) stays queued in the
// proxy. Resident memory (VmRSS) per held call = (RSS holding them − RSS idle) / calls held. At the end
// the proxy is stopped with a short grace period, which answers every held call (503, never sent).

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { APP_ID, APPS, pidOf, SECRET, startProxy } from './context.js';
import { httpSend, openLoop, pool, putUser, sleep } from './load.js';
import { rssBytes } from './proc.js';
import { num, type Report } from './report.js';
import { startUpstream } from './upstream.js';

export interface MemoryOptions {
  calls: number;
  /** Calls held at the first measuring point (for the marginal cost). */
  firstStep: number;
  ratePerSec: number;
}

async function queued(adminUrl: string): Promise<number> {
  const text = await fetch(`${adminUrl}/metrics`).then((r) => r.text());
  const m = /^batch_proxy_queued_ops\{[^}]*\} (\d+)/m.exec(text);
  return m?.[1] === undefined ? 0 : Number(m[1]);
}

/** Waits (bounded) until the proxy reports at least `n` ops queued; returns what it reports. */
async function waitQueued(adminUrl: string, n: number, timeoutMs = 15_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  let q = await queued(adminUrl);
  while (q < n && performance.now() < deadline) {
    await sleep(100);
    q = await queued(adminUrl);
  }
  return q;
}

/** RSS per held call of a bare node:http server that never answers (hold-server.ts). */
async function bareNodeFloor(
  opts: MemoryOptions,
): Promise<{ idle: number; atFirstStep: number; held: number; perCall: number; marginal: number }> {
  const child = fork(fileURLToPath(new URL('./hold-server.js', import.meta.url)), [], {
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const onExit = () => child.kill('SIGKILL');
  process.once('exit', onExit);
  const p = await new Promise<number>((resolve) =>
    child.once('message', (m: { port: number }) => resolve(m.port)),
  );
  const hold = pool(`http://127.0.0.1:${p}`, opts.calls + 100);
  try {
    await sleep(500);
    const pid = child.pid ?? -1;
    const idle = rssBytes(pid);
    // The same two steps as the proxy's, so both marginal figures leave out the same one-time costs.
    const send = httpSend([hold], putUser(APP_ID, SECRET, opts.calls));
    const first = openLoop({
      send,
      ratePerSec: opts.ratePerSec,
      durationMs: (opts.firstStep * 1000) / opts.ratePerSec,
    });
    await first.allSent;
    await sleep(1000);
    const atFirstStep = rssBytes(pid);
    const rest = opts.calls - opts.firstStep;
    const second = openLoop({
      send: (i: number) => send(i + opts.firstStep),
      ratePerSec: opts.ratePerSec,
      durationMs: (rest * 1000) / opts.ratePerSec,
    });
    await second.allSent;
    await sleep(1000);
    const held = rssBytes(pid);
    return {
      idle,
      atFirstStep,
      held,
      perCall: (held - idle) / opts.calls,
      marginal: (held - atFirstStep) / rest,
    };
  } finally {
    child.kill('SIGKILL');
    process.off('exit', onExit);
    await hold.destroy();
  }
}

export async function memory(
  report: Report,
  opts: MemoryOptions,
): Promise<{
  perCallBytes: number;
  floorPerCallBytes: number;
  marginalBytes: number;
  floorMarginalBytes: number;
}> {
  const upstream = await startUpstream({ apps: APPS });
  const proxy = await startProxy({
    UPSTREAM_URL: upstream.url,
    BATCH_RATE_PER_SEC: '0.05',
    BATCH_BURST: '1',
    MAX_WAIT_MS: '120000',
    QUEUE_MAX_OPS: String(opts.calls * 2),
    SHUTDOWN_GRACE_MS: '500',
  });
  const pid = pidOf(proxy);
  const p = pool(proxy.url, opts.calls + 100);
  let result = {
    perCallBytes: Number.NaN,
    floorPerCallBytes: Number.NaN,
    marginalBytes: Number.NaN,
    floorMarginalBytes: Number.NaN,
  };
  try {
    await sleep(500);
    const idle = rssBytes(pid);
    const send = httpSend([p], putUser(APP_ID, SECRET, opts.calls));
    // The first batch call is granted at once (burst 1) and carries up to 10 ops: the rest stay.
    const first = openLoop({
      send,
      ratePerSec: opts.ratePerSec,
      durationMs: (opts.firstStep * 1000) / opts.ratePerSec,
    });
    await first.allSent;
    const heldA = await waitQueued(proxy.adminUrl, opts.firstStep - 10);
    await sleep(300);
    const rssA = rssBytes(pid);
    const rest = opts.calls - opts.firstStep;
    const offset = (i: number) => send(i + opts.firstStep);
    const second = openLoop({
      send: offset,
      ratePerSec: opts.ratePerSec,
      durationMs: (rest * 1000) / opts.ratePerSec,
    });
    await second.allSent;
    const heldB = await waitQueued(proxy.adminUrl, opts.calls - 10);
    await sleep(300);
    const rssB = rssBytes(pid);

    // Stop: the grace period ends with every held call answered 503 (PROXY_DRAINING).
    await proxy.stop();
    const [a, b] = await Promise.all([first.stop(10_000), second.stop(10_000)]);
    const answered = a.completed + b.completed - a.errors - b.errors;
    const statuses: Record<number, number> = { 200: a.ok + b.ok };
    for (const s of [a.statuses, b.statuses]) {
      for (const [k, v] of Object.entries(s)) statuses[Number(k)] = (statuses[Number(k)] ?? 0) + v;
    }

    const kb = (bytes: number) => `${num(bytes / 1024, 2)} KiB`;
    const mib = (bytes: number) => `${num(bytes / 2 ** 20, 1)} MiB`;
    const floor = await bareNodeFloor(opts);
    result = {
      perCallBytes: (rssB - idle) / heldB,
      floorPerCallBytes: floor.perCall,
      marginalBytes: (rssB - rssA) / (heldB - heldA),
      floorMarginalBytes: floor.marginal,
    };
    report.table(
      ['point', 'calls held (queued gauge)', 'proxy RSS', 'RSS − idle', 'per held call'],
      [
        ['idle (after start-up)', 0, mib(idle), '-', '-'],
        [`${opts.firstStep} sent`, heldA, mib(rssA), mib(rssA - idle), kb((rssA - idle) / heldA)],
        [`${opts.calls} sent`, heldB, mib(rssB), mib(rssB - idle), kb((rssB - idle) / heldB)],
        [
          `marginal (${opts.firstStep} → ${opts.calls})`,
          heldB - heldA,
          '-',
          mib(rssB - rssA),
          kb((rssB - rssA) / (heldB - heldA)),
        ],
        [
          `floor: bare node:http server, ${opts.firstStep} held`,
          opts.firstStep,
          mib(floor.atFirstStep),
          mib(floor.atFirstStep - floor.idle),
          kb((floor.atFirstStep - floor.idle) / opts.firstStep),
        ],
        [
          `floor: bare node:http server, ${opts.calls} held`,
          opts.calls,
          mib(floor.held),
          mib(floor.held - floor.idle),
          kb(floor.perCall),
        ],
        [
          `floor: marginal (${opts.firstStep} → ${opts.calls})`,
          opts.calls - opts.firstStep,
          '-',
          mib(floor.held - floor.atFirstStep),
          kb(floor.marginal),
        ],
      ],
    );
    report.text(
      `Target (issue #17) ≤ 1.3× the bare server's memory per held call, each call's own cost (the ` +
        `marginal rows: what one more held call adds, past the one-time growth of the first steps): ` +
        `${num(result.marginalBytes / result.floorMarginalBytes, 2)}×, ` +
        `${result.marginalBytes <= 1.3 * result.floorMarginalBytes ? 'met' : 'MISSED'}; ` +
        `counting from idle, one-time growth included: ${num(result.perCallBytes / result.floorPerCallBytes, 2)}×. ` +
        'After the proxy was ' +
        `stopped, ${answered} of ${a.sent + b.sent} calls had an answer ` +
        `(${Object.entries(statuses)
          .filter(([, v]) => v > 0)
          .map(([k, v]) => `${v}× ${k}`)
          .join(', ')}); ${a.errors + b.errors} ended without one.`,
    );
  } finally {
    await proxy.stop('SIGKILL');
    await p.destroy();
    await upstream.close();
  }
  return result;
}
