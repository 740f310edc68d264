import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
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
