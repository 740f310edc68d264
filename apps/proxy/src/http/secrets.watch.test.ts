// Which changes in the secrets file's directory re-read it: the file itself, and Kubernetes' swap of
// its `..data` symlink; not another file beside it, and nothing once closed.
//
// "Did not re-read" is observed without waiting on a timer: the test watches the same directory
// itself. Node delivers one inotify event to every watcher of that directory in the same pass, so
// once the test's own watcher has seen the event and a macrotask has passed, the loader's watcher
// has seen it too.

import {
  type FSWatcher,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  symlinkSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type AppSecrets, loadAppSecrets } from './secrets.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'secrets-watch-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Resolves once the test's own watcher on `dir` saw an event naming `file`, and a macrotask passed. */
function seen(dir: string, file: string): Promise<void> {
  return new Promise((resolve) => {
    const watcher: FSWatcher = watch(dir, (_event, name) => {
      if (name !== file) return;
      watcher.close();
      setImmediate(resolve);
    });
  });
}

function load(path: string): { secrets: AppSecrets; reloads: Array<Error | undefined> } {
  const reloads: Array<Error | undefined> = [];
  const secrets = loadAppSecrets(path, (error) => reloads.push(error));
  cleanups.push(() => secrets.close());
  return { secrets, reloads };
}

describe('loadAppSecrets watches', () => {
  it('re-reads the file when Kubernetes swaps the ..data symlink of a mounted Secret', async () => {
    // The layout of a mounted Secret: the file is a symlink through `..data` into a timestamped
    // directory; an update writes a new directory and renames a new `..data` link over the old one.
    // The file's own name never appears in an event.
    const dir = tempDir();
    mkdirSync(join(dir, '..2026_11_30_09_00_00.1'));
    writeFileSync(join(dir, '..2026_11_30_09_00_00.1', 'secrets.json'), JSON.stringify({ app1: 'one' }));
    symlinkSync('..2026_11_30_09_00_00.1', join(dir, '..data'));
    symlinkSync(join('..data', 'secrets.json'), join(dir, 'secrets.json'));

    let swapped: () => void = () => {};
    const reloadedTwo = new Promise<void>((resolve) => {
      swapped = resolve;
    });
    const secrets = loadAppSecrets(join(dir, 'secrets.json'), () => {
      if (secrets.get('app1') === 'two') swapped();
    });
    cleanups.push(() => secrets.close());
    expect(secrets.get('app1')).toBe('one');

    mkdirSync(join(dir, '..2026_11_30_10_00_00.2'));
    writeFileSync(join(dir, '..2026_11_30_10_00_00.2', 'secrets.json'), JSON.stringify({ app1: 'two' }));
    symlinkSync('..2026_11_30_10_00_00.2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));

    await reloadedTwo;
    expect(secrets.get('app1')).toBe('two');
  });

  it('does not re-read for another file in the same directory', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'secrets.json'), JSON.stringify({ app1: 'one' }));
    const { secrets, reloads } = load(join(dir, 'secrets.json'));
    const other = seen(dir, 'other.txt');
    writeFileSync(join(dir, 'other.txt'), 'not the secrets');
    await other;
    expect(reloads).toEqual([]);
    expect(secrets.get('app1')).toBe('one');
  });

  it('re-reads the file when it is written in place', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'secrets.json'), JSON.stringify({ app1: 'one' }));
    const { secrets, reloads } = load(join(dir, 'secrets.json'));
    const written = seen(dir, 'secrets.json');
    writeFileSync(join(dir, 'secrets.json'), JSON.stringify({ app1: 'two' }));
    await written;
    expect(reloads.length).toBeGreaterThan(0);
    expect(reloads.every((error) => error === undefined)).toBe(true);
    expect(secrets.get('app1')).toBe('two');
  });

  it('stops re-reading once closed', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'secrets.json'), JSON.stringify({ app1: 'one' }));
    const { secrets, reloads } = load(join(dir, 'secrets.json'));
    secrets.close();
    const written = seen(dir, 'secrets.json');
    writeFileSync(join(dir, 'secrets.json'), JSON.stringify({ app1: 'two' }));
    await written;
    expect(reloads).toEqual([]);
    expect(secrets.get('app1')).toBe('one');
  });
});
