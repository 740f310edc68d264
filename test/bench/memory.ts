// Scenario 4 — memory: 10,000 calls held at once. The batch budget is nearly nil (one batch call every
// 20 s, burst 1) and the deadline long, so every call (each on its own connection) stays queued in the
// proxy. Resident memory (VmRSS) per held call = (RSS holding them − RSS idle) / calls held. At the end
// the proxy is stopped with a short grace period, which answers every held call (503, never sent).

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { APP_ID, APPS, pidOf, SECRET, startProxy } from './context.js';
import { httpSend, type LoadRun, openLoop, pool, putUser, type Send, sleep } from './load.js';
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
/**
 * Sends calls 0..firstStep-1, then the rest, at `ratePerSec`, running `settle` after each step's last
 * send (it waits until the calls are held and reads the memory): the same two steps for the proxy and
 * the bare server, so both marginal figures leave out the same one-time costs.
 */
async function inTwoSteps<T>(
  send: Send,
  opts: MemoryOptions,
  settle: () => Promise<T>,
): Promise<{ loops: [LoadRun, LoadRun]; first: T; second: T; rest: number }> {
  const rest = opts.calls - opts.firstStep;
  const loopA = openLoop({
    send,
    ratePerSec: opts.ratePerSec,
    durationMs: (opts.firstStep * 1000) / opts.ratePerSec,
  });
  await loopA.allSent;
  const first = await settle();
  const loopB = openLoop({
    send: (i: number) => send(i + opts.firstStep),
    ratePerSec: opts.ratePerSec,
    durationMs: (rest * 1000) / opts.ratePerSec,
  });
  await loopB.allSent;
  const second = await settle();
  return { loops: [loopA, loopB], first, second, rest };
}

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
    const steps = await inTwoSteps(httpSend([hold], putUser(APP_ID, SECRET, opts.calls)), opts, async () => {
      await sleep(1000);
      return rssBytes(pid);
    });
    const atFirstStep = steps.first;
    const held = steps.second;
    const rest = steps.rest;
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
    // The first batch call is granted at once (burst 1) and carries up to 10 ops: the rest stay.
    let expectHeld = opts.firstStep - 10;
    const steps = await inTwoSteps(httpSend([p], putUser(APP_ID, SECRET, opts.calls)), opts, async () => {
      const held = await waitQueued(proxy.adminUrl, expectHeld);
      expectHeld = opts.calls - 10;
      await sleep(300);
      return { held, rss: rssBytes(pid) };
    });
    const [first, second] = steps.loops;
    const { held: heldA, rss: rssA } = steps.first;
    const { held: heldB, rss: rssB } = steps.second;

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
