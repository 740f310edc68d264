// Loaded into the proxy with --import by shutdown-log.test.ts: from SIGTERM on it keeps libuv's thread
// pool (one thread there, UV_THREADPOOL_SIZE=1) busy for BUSY_POOL_MS, as slow DNS lookups, file reads
// or crypto do in production. The proxy's asynchronous log writes wait in that pool meanwhile.
import { openSync, read, writeSync } from 'node:fs';

const fifo = process.env.BUSY_POOL_FIFO;
const holdMs = Number(process.env.BUSY_POOL_MS);

if (fifo) {
  process.once('SIGTERM', () => {
    // Read-write, so opening does not wait for a writer; the read blocks the pool's thread until a
    // byte arrives, which this process writes itself when the time is up (a wall-clock hold, unlike
    // a CPU-bound job whose length depends on the machine's load).
    const fd = openSync(fifo, 'r+');
    read(fd, Buffer.alloc(1), 0, 1, null, () => {});
    setTimeout(() => writeSync(fd, 'x'), holdMs).unref();
  });
}
