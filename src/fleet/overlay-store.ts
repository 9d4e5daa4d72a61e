// The applied remote overlay on the gateway's disk, so it survives restarts and reboots while the
// broker is out of reach. Protection: the file lives in gateway.dataDir beside the queue, is
// written atomically and durably (durable-file.ts) with mode 0600, and is refused when it is not
// a regular file owned by this user and closed to group and others (a file others could write
// would let them reconfigure the gateway). It holds configuration, never a key, a secret or a
// reading; the overlay is validated again by the site schema every time it is applied.

import { lstat, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../durable-file.js';
import { EdgegwError } from '../errors.js';
import { isPlainObject, type Overlay } from './settable.js';

/** The last desired state that was refused or reverted: not applied again until it changes. */
export interface TriedChange {
  hash: string;
  shadowVersion: number;
  result: 'refused' | 'reverted';
  reason: string;
}

export interface StoredOverlay {
  /** The shadow it came from, and that shadow's version when it was applied. */
  shadow: string;
  shadowVersion: number;
  /** ms since the epoch. */
  appliedAt: number;
  overlay: Overlay;
  tried: TriedChange | null;
}

export const OVERLAY_FILE = 'fleet-overlay.json';

export function overlayPath(dataDir: string): string {
  return join(dataDir, OVERLAY_FILE);
}

/** The stored overlay, or null when there is none; throws EDGEGW_E_FLEET_OVERLAY when unusable. */
export async function readOverlay(dataDir: string): Promise<StoredOverlay | null> {
  const file = overlayPath(dataDir);
  let st;
  try {
    st = await lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new EdgegwError('EDGEGW_E_FLEET_OVERLAY', `cannot read ${file} (${errno(err)})`);
  }
  const uid = process.getuid?.();
  if (!st.isFile() || (st.mode & 0o077) !== 0 || (uid !== undefined && st.uid !== uid)) {
    throw new EdgegwError(
      'EDGEGW_E_FLEET_OVERLAY',
      `${file} is not a private file of this user (mode ${(st.mode & 0o777).toString(8)}); it is ignored`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new EdgegwError('EDGEGW_E_FLEET_OVERLAY', `${file} does not parse (${errno(err)}); it is ignored`);
  }
  const s = parsed as Partial<StoredOverlay> | null;
  if (
    !isPlainObject(s) ||
    typeof s.shadow !== 'string' ||
    typeof s.shadowVersion !== 'number' ||
    typeof s.appliedAt !== 'number' ||
    !isPlainObject(s.overlay)
  ) {
    throw new EdgegwError('EDGEGW_E_FLEET_OVERLAY', `${file} is not an overlay file; it is ignored`);
  }
  return { ...(s as StoredOverlay), tried: isPlainObject(s.tried) ? s.tried : null };
}

export async function writeOverlay(dataDir: string, stored: StoredOverlay): Promise<void> {
  const file = overlayPath(dataDir);
  // A temporary file left by a crash keeps its mode when reopened: start from a new one (0600).
  await rm(`${file}.tmp`, { force: true });
  await writeFileDurably(file, `${file}.tmp`, `${JSON.stringify(stored, null, 2)}\n`);
}

function errno(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}
