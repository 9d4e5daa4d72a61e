// The identity files around a daemon start: what a crash during a rotation or a provision left is
// settled before the TLS files are read (files.ts, recoverIdentity), and the `.previous` files of
// the last rotation are removed once the daemon has connected on the current ones.

import type { Logger } from 'pino';
import { audit } from '../audit.js';
import type { Control } from '../uplink/control.js';
import { recoverIdentity, removePrevious, type IdentityPaths } from './files.js';

const SAID: Record<string, string> = {
  'discarded-next': 'an unproven new certificate (.next) from an interrupted rotation was removed',
  'completed-commit': 'an interrupted commit of a proven certificate was completed',
  'restored-previous': 'the certificate and key did not match; the previous pair was restored',
};

export async function settleIdentity(paths: IdentityPaths, log: Logger): Promise<void> {
  const done = await recoverIdentity(paths);
  if (done === 'none') return;
  audit(
    log,
    'certificate-rotation',
    { result: done, certFile: paths.cert, keyFile: paths.key },
    `at start: ${SAID[done] ?? done}`,
    'warn',
  );
}

/** After the first connection of this start (a successful start), `.previous` is no longer needed. */
export function dropPreviousWhenConnected(control: Control, paths: IdentityPaths, log: Logger): void {
  const off = control.onUp(() => {
    off();
    removePrevious(paths).catch((err: unknown) =>
      log.warn({ err: (err as NodeJS.ErrnoException).code ?? String(err) }, 'cannot remove .previous files'),
    );
  });
}
