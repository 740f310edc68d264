// The checks test/image/run.sh makes against the running image, with the host's node (no
// dependencies: plain ESM, global fetch). Each prints what it saw and exits non-zero on a failure.
//
//   node checks.mjs batch   <proxyUrl> <upstreamUrl> <statsUrl>
//   node checks.mjs sigterm <proxyUrl> <statsUrl> <docker> <container>
//   node checks.mjs fleet   <statsJson> <adminUrl>...

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const APP = 'demo';
const SECRET = 'sk_demo_not_a_real_key';
const AUTH = { authorization: `Bearer ${SECRET}` };
const CONCURRENT = 5;

const failures = [];
const check = (ok, what) => {
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};
const stats = async (url) => (await fetch(url, { signal: AbortSignal.timeout(5_000) })).json();

/** Waits until the upstream has seen more calls than `before`; the stats are the only event source. */
async function arrivedAfter(statsUrl, before, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await stats(statsUrl);
    if (now.calls > before) return now;
    if (Date.now() > deadline) throw new Error(`no call reached the upstream within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Distinct users: the proxy answers identical concurrent GETs with one operation. */
const userIds = Array.from({ length: CONCURRENT }, (_, i) => `image-check-${i}`);

async function seedUsers(upstreamUrl) {
  for (const id of userIds) {
    const put = await fetch(`${upstreamUrl}/v1/${APP}/users/${id}`, {
      method: 'PUT',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ name: `User ${id}` }),
    });
    if (put.status !== 200) throw new Error(`seeding ${id}: upstream answered ${put.status}`);
  }
}

async function batch(proxyUrl, upstreamUrl, statsUrl) {
  await seedUsers(upstreamUrl);
  const before = await stats(statsUrl);
  const answers = await Promise.all(
    userIds.map(async (id) => {
      const res = await fetch(`${proxyUrl}/v1/${APP}/users/${id}`, {
        headers: AUTH,
        signal: AbortSignal.timeout(15_000),
      });
      const body = await res.json();
      return { status: res.status, ok: res.status === 200 && body?.name === `User ${id}` };
    }),
  );
  const after = await stats(statsUrl);
  check(
    answers.every((a) => a.ok),
    `${CONCURRENT} concurrent GETs of different users answered 200, each with its user (${answers.map((a) => a.status).join(' ')})`,
  );
  check(
    after.calls - before.calls === 1 && after.batchCalls - before.batchCalls === 1,
    `they left as one upstream call, a batch (upstream calls +${after.calls - before.calls}, batch calls +${after.batchCalls - before.batchCalls})`,
  );
  check(
    after.batchOps - before.batchOps === CONCURRENT,
    `carrying ${CONCURRENT} operations (+${after.batchOps - before.batchOps})`,
  );
}

async function sigterm(proxyUrl, statsUrl, docker, container) {
  const before = await stats(statsUrl);
  let answeredAt;
  const call = fetch(`${proxyUrl}/v1/${APP}/users/${userIds[0]}`, {
    headers: AUTH,
    signal: AbortSignal.timeout(30_000),
  }).then(async (res) => {
    const body = await res.json();
    answeredAt = performance.now();
    return { status: res.status, body };
  });
  call.catch(() => {});
  // The call is in flight once the upstream has it; the fake answers only after its latency.
  await arrivedAfter(statsUrl, before.calls, 10_000);
  await run(docker, ['kill', '--signal', 'SIGTERM', container]);
  const signalledAt = performance.now();
  check(answeredAt === undefined, 'SIGTERM reached the container while the call was in flight');
  const answer = await call.catch((err) => ({ status: 0, body: String(err) }));
  check(
    answer.status === 200 && answer.body?.name === `User ${userIds[0]}`,
    `the in-flight call was answered ${answer.status} after SIGTERM`,
  );
  const { stdout } = await run(docker, ['wait', container], { timeout: 40_000 });
  const exitedAt = performance.now();
  check(stdout.trim() === '0', `the proxy exited with code ${stdout.trim()}`);
  console.log(`  (exit ${Math.round(exitedAt - signalledAt)} ms after SIGTERM)`);
}

async function fleet(statsJson, ...adminUrls) {
  const upstream = JSON.parse(statsJson);
  check(upstream.rejected429 === 0, `upstream 429s over the whole run: ${upstream.rejected429}`);
  for (const url of adminUrls) {
    const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
    const sum = (name) =>
      text
        .split('\n')
        .filter((line) => line.startsWith(`${name}{`) && line.includes('status="200"'))
        .reduce((total, line) => total + Number(line.split(' ').at(-1)), 0);
    const answered = sum('batch_proxy_requests_total');
    const batches = sum('batch_proxy_upstream_calls_total');
    check(answered > 0 && batches > 0, `${url}: ${answered} calls answered 200 in ${batches} upstream calls`);
  }
}

const [command, ...args] = process.argv.slice(2);
const commands = { batch, sigterm, fleet };
if (!commands[command]) {
  console.error(`usage: checks.mjs ${Object.keys(commands).join('|')} ...`);
  process.exit(2);
}
try {
  await commands[command](...args);
} catch (err) {
  check(false, `${command}: ${err instanceof Error ? err.message : err}`);
}
process.exitCode = failures.length === 0 ? 0 : 1;
