// An `entry` for the harness that runs the proxy under `node --cpu-prof` (a flag Node 20 refuses in
// NODE_OPTIONS): it starts the real proxy as its own child with the flag and passes signals on. The
// proxy writes the profile to BENCH_PROFILE_DIR when it exits.

import { spawn } from 'node:child_process';

const main = process.env.BENCH_PROXY_MAIN;
const dir = process.env.BENCH_PROFILE_DIR;
if (!main || !dir) throw new Error('BENCH_PROXY_MAIN and BENCH_PROFILE_DIR must be set');
const child = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, main], { stdio: 'inherit' });
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => child.kill(signal));
child.once('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
