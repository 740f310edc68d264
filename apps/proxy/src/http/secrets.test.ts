import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { loadAppSecrets, SecretsFileError } from './secrets.js';

const SECRET = 'sk_live_do_not_print_me_0123456789';
const dir = mkdtempSync(join(tmpdir(), 'secrets-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Malformed files whose JSON error would quote the text around the mistake. */
const MALFORMED = [
  `{"app1": "${SECRET}",}`,
  `{"app1": "${SECRET}" "app2": "x"}`,
  `{"app1": ${SECRET}}`,
  `{"app1": "${SECRET}`,
  `${SECRET}`,
];

describe('APP_SECRETS_FILE errors never print a secret', () => {
  it.each(MALFORMED.map((text, i) => [i, text]))('at start (case %i)', (i, text) => {
    const file = join(dir, `start-${i}.json`);
    writeFileSync(file, text);
    let caught: unknown;
    try {
      loadAppSecrets(file).close();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SecretsFileError);
    const message = (caught as Error).message;
    expect(message).toContain('APP_SECRETS_FILE');
    expect(message).not.toContain(SECRET.slice(0, 8));
    expect(message).not.toContain('\n');
  });

  it('on re-read: the previous keys stay, the error names the file and quotes nothing', async () => {
    const file = join(dir, 'reload.json');
    writeFileSync(file, JSON.stringify({ app1: SECRET }));
    let report: (error: Error | undefined) => void = () => {};
    const reloaded = new Promise<Error | undefined>((resolve) => {
      report = resolve;
    });
    const secrets = loadAppSecrets(file, (error) => report(error));
    writeFileSync(file, `{"app1": "${SECRET}x",}`);
    const error = await reloaded;
    secrets.close();
    expect(secrets.get('app1')).toBe(SECRET);
    expect(error).toBeInstanceOf(SecretsFileError);
    expect(error?.message).toContain('not valid JSON');
    expect(error?.message).not.toContain(SECRET.slice(0, 8));
  });

  it('an unreadable file is named with its errno code only', () => {
    expect(() => loadAppSecrets(join(dir, 'missing.json'))).toThrowError(
      /APP_SECRETS_FILE .* cannot be read \(ENOENT\)/,
    );
    expect(() => loadAppSecrets(dir)).toThrowError(/cannot be read \(EISDIR\)/);
  });
});

describe('APP_SECRETS_FILE JSON errors say where, in digits only', () => {
  const load = (name: string, text: string) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    try {
      loadAppSecrets(file).close();
    } catch (error) {
      return { file, message: (error as Error).message };
    }
    throw new Error('loaded a malformed file');
  };

  it('gives the position V8 names, and nothing when it names none', () => {
    // Node 20 says "at position 12"; Node 22 adds "(line 1 column 13)", which is what is kept then.
    const comma = load('comma.json', '{"app1": "x",}');
    const where = /line \d+ column/.test(positionMessageOf('{"app1": "x",}'))
      ? '(line 1, column 14)'
      : '(at character 13)';
    expect(comma.message).toBe(`APP_SECRETS_FILE ${comma.file} is not valid JSON ${where}`);
    const far = load('far.json', `{"app1": "${'x'.repeat(120)}" "app2": "y"}`);
    expect(far.message).toMatch(/ is not valid JSON \((at character 132|line 1, column 133)\)$/);
    const empty = load('empty.json', '');
    expect(empty.message).toBe(`APP_SECRETS_FILE ${empty.file} is not valid JSON`);
  });

  it('keeps only the line and column of a message that has them (Node 22 and later)', () => {
    // Node 20 never writes line and column, so this runtime's JSON.parse is made to say what
    // Node 22 says for a mistake on line 12, column 34 of a longer file.
    const spy = vi.spyOn(JSON, 'parse').mockImplementationOnce(() => {
      throw new SyntaxError(
        `Unexpected token 'k', ..."y",\n  "app2": k${SECRET}"... is not valid JSON at position 345 (line 12 column 34)`,
      );
    });
    try {
      const { file, message } = load('lines.json', '{}');
      expect(message).toBe(`APP_SECRETS_FILE ${file} is not valid JSON (line 12, column 34)`);
    } finally {
      spy.mockRestore();
    }
  });
});

/** The message this runtime's JSON.parse gives for `text`. */
function positionMessageOf(text: string): string {
  try {
    JSON.parse(text);
  } catch (error) {
    return (error as Error).message;
  }
  return '';
}

/** A secrets file holding `text`, in a folder of its own (for its replacement beside it). */
function secretsFile(text: string): { folder: string; path: string } {
  const folder = mkdtempSync(join(dir, 'file-'));
  const path = join(folder, 'secrets.json');
  writeFileSync(path, text);
  return { folder, path };
}

/** Replaces the file atomically, as a Kubernetes Secret update does. */
function replace(file: { folder: string; path: string }, text: string): void {
  writeFileSync(join(file.folder, 'next.json'), text);
  renameSync(join(file.folder, 'next.json'), file.path);
}

/** Loads and watches the file; `reloaded` resolves with the first reload's outcome. */
function watched(path: string) {
  let onReload: (error?: Error) => void = () => {};
  const reloaded = new Promise<Error | undefined>((resolve) => {
    onReload = resolve;
  });
  return { secrets: loadAppSecrets(path, (error) => onReload(error)), reloaded };
}

describe('loadAppSecrets', () => {
  it('loads the file and picks up a replaced file', async () => {
    const file = secretsFile(JSON.stringify({ app1: 'one' }));
    const { secrets, reloaded } = watched(file.path);
    expect(secrets.get('app1')).toBe('one');
    replace(file, JSON.stringify({ app1: 'two' }));
    expect(await reloaded).toBeUndefined();
    expect(secrets.get('app1')).toBe('two');
    secrets.close();
  });

  it('keeps the previous keys and reports a bad reload', async () => {
    const file = secretsFile(JSON.stringify({ app1: 'one' }));
    const { secrets, reloaded } = watched(file.path);
    replace(file, '{"app1": ');
    const error = await reloaded;
    expect(error).toBeInstanceOf(SecretsFileError);
    expect(error?.name).toBe('SecretsFileError');
    expect(error?.message).toMatch(/is not valid JSON/);
    expect(secrets.get('app1')).toBe('one');
    secrets.close();
  });

  it.each([
    ['not JSON', '{', /is not valid JSON/],
    ['an array', '["k"]', /must hold a JSON object/],
    ['null', 'null', /must hold a JSON object/],
    ['a string', '"k"', /must hold a JSON object/],
    ['an empty secret', '{"app1": ""}', /secret of app "app1" must be a non-empty string/],
  ])('refuses a file that is %s', (_name, text, message) => {
    const { path } = secretsFile(text);
    expect(() => loadAppSecrets(path)).toThrow(SecretsFileError);
    expect(() => loadAppSecrets(path)).toThrow(message);
  });

  it('refuses a file that is not an object of strings', () => {
    const { path } = secretsFile(JSON.stringify({ app1: 5 }));
    expect(() => loadAppSecrets(path)).toThrow(/app1/);
  });
});
