// App secret keys for AUTH_MODE=app-token, from APP_SECRETS_FILE (a JSON object appId → secret key,
// usually a mounted Kubernetes Secret). Re-read when the file changes; never logged.

import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';

export interface AppSecrets {
  get(appId: string): string | undefined;
  close(): void;
}

export class SecretsFileError extends Error {
  override readonly name = 'SecretsFileError';
}

function parse(path: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    // The errno code only (ENOENT, EISDIR, EACCES): the message is Node's, and says no more.
    const code = (error as NodeJS.ErrnoException).code ?? 'read error';
    throw new SecretsFileError(`APP_SECRETS_FILE ${path} cannot be read (${code})`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    // V8's message quotes the text around the mistake — a secret, here. Only the position is kept.
    throw new SecretsFileError(`APP_SECRETS_FILE ${path} is not valid JSON${position(error)}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new SecretsFileError(
      `APP_SECRETS_FILE ${path} must hold a JSON object {"<appId>": "<secret key>"}`,
    );
  }
  const map = new Map<string, string>();
  for (const [appId, secret] of Object.entries(data)) {
    if (typeof secret !== 'string' || secret.length === 0) {
      throw new SecretsFileError(
        `APP_SECRETS_FILE ${path}: the secret of app "${appId}" must be a non-empty string`,
      );
    }
    map.set(appId, secret);
  }
  return map;
}

/** Where a JSON.parse error points, from its message, as digits only (never the quoted text). */
function position(error: unknown): string {
  const message = error instanceof Error ? error.message : '';
  const lineColumn = /line (\d+) column (\d+)/.exec(message);
  if (lineColumn) return ` (line ${lineColumn[1]}, column ${lineColumn[2]})`;
  const at = /position (\d+)/.exec(message);
  return at ? ` (at character ${at[1]})` : '';
}

/**
 * Loads the file now (throwing a SecretsFileError on a bad one) and reloads it on change. Kubernetes
 * updates a mounted Secret by swapping a symlink in the directory, so the directory is watched. A bad
 * reload keeps the previous keys and reports through `onError`.
 */
export function loadAppSecrets(path: string, onReload: (error?: Error) => void = () => {}): AppSecrets {
  let secrets = parse(path);
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), (_event, file) => {
      if (file !== null && file !== basename(path) && !file.startsWith('..')) return;
      try {
        secrets = parse(path);
        onReload();
      } catch (error) {
        onReload(error as Error);
      }
    });
    watcher.unref();
  } catch {
    // Some filesystems cannot be watched; the keys loaded at start stay in force.
  }
  return {
    get: (appId) => secrets.get(appId),
    close: () => watcher?.close(),
  };
}
