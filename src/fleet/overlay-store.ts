// The applied remote overlay on the gateway's disk, so it survives restarts and reboots while the
// broker is out of reach. Protection, the same as the queue's records: its content is sealed with
// the queue's current key (XChaCha20-Poly1305, seal/sealer.ts) and opens with any key the keyring
// holds (queue.keyFile, queue.previousKeyFiles, the rotated keys), so a file altered, damaged or
// written by anyone without the key is refused. It is also written atomically and durably
// (durable-file.ts) with mode 0600, and refused when it is not a regular file owned by this user
// and closed to group and others. A plain file written by an earlier edgegw is refused too (it
// cannot be told from one written by someone else): the shadow's desired state is applied again
// at the next connection and stored sealed. It holds configuration, never a key, a secret or a
// reading; the overlay is validated again by the site schema every time it is applied.

import { lstat, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../durable-file.js';
import { EdgegwError } from '../errors.js';
import { sealedFileKeyId } from '../seal/sealer.js';
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
/** The sealed file's `format`; the purpose the seal is bound to. */
const SEALED_FORMAT = 'edgegw-sealed-overlay-1';

/** The queue keys the overlay is sealed with (seal/keyring.ts). */
export interface OverlayKeys {
  sealFile(purpose: string, plain: Uint8Array): Uint8Array;
  openFile(purpose: string, sealed: Uint8Array): Uint8Array;
}

export function overlayPath(dataDir: string): string {
  return join(dataDir, OVERLAY_FILE);
}

/**
 * The stored overlay, or null when there is none; throws EDGEGW_E_FLEET_OVERLAY when unusable.
 * `keys` is asked only when there is a file to open (check-config need not read a key for nothing).
 */
/**
 * The overlay could not be read by this user, which says nothing of what the daemon's user reads:
 * a folder or file closed to it, a file another user owns (check-config run as root or as a
 * technician), queue keys it may not read.
 */
export class OverlayUnreadableError extends EdgegwError {
  constructor(message: string) {
    super('EDGEGW_E_FLEET_OVERLAY', message);
  }
}

export async function readOverlay(
  dataDir: string,
  keys: () => Promise<OverlayKeys>,
): Promise<StoredOverlay | null> {
  const file = overlayPath(dataDir);
  let st;
  try {
    st = await lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new OverlayUnreadableError(`cannot read ${file} (${errno(err)})`);
  }
  const uid = process.getuid?.();
  if (st.isFile() && (st.mode & 0o077) === 0 && uid !== undefined && st.uid !== uid) {
    throw new OverlayUnreadableError(
      `${file} belongs to uid ${st.uid}, not to this user (uid ${uid}); it is ignored`,
    );
  }
  if (!st.isFile() || (st.mode & 0o077) !== 0) {
    throw new EdgegwError(
      'EDGEGW_E_FLEET_OVERLAY',
      `${file} is not a private file of this user (mode ${(st.mode & 0o777).toString(8)}); it is ignored`,
    );
  }
  let outer: unknown;
  try {
    outer = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EACCES')
      throw new OverlayUnreadableError(`cannot read ${file} (EACCES)`);
    throw new EdgegwError('EDGEGW_E_FLEET_OVERLAY', `${file} does not parse (${errno(err)}); it is ignored`);
  }
  if (isPlainObject(outer) && outer.format === undefined && 'overlay' in outer) {
    throw new EdgegwError(
      'EDGEGW_E_FLEET_OVERLAY',
      `${file} is in the plain format of an earlier edgegw, which is not authenticated; it is ignored ` +
        '(the shadow is applied again at the next connection and stored sealed)',
    );
  }
  if (!isPlainObject(outer) || outer.format !== SEALED_FORMAT || typeof outer.sealed !== 'string') {
    throw new EdgegwError('EDGEGW_E_FLEET_OVERLAY', `${file} is not an overlay file; it is ignored`);
  }
  let ring: OverlayKeys;
  try {
    ring = await keys();
  } catch (err) {
    throw new OverlayUnreadableError(
      `${file} cannot be opened: the queue keys could not be read (${(err as Error).message}); it is ignored`,
    );
  }
  let parsed: unknown;
  try {
    const plain = ring.openFile(SEALED_FORMAT, Buffer.from(outer.sealed, 'base64'));
    parsed = JSON.parse(Buffer.from(plain).toString('utf8'));
  } catch (err) {
    throw new EdgegwError(
      'EDGEGW_E_FLEET_OVERLAY',
      `${file} does not open with the queue keys: ${(err as Error).message}; it is ignored`,
    );
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

/**
 * The id of the queue key the stored overlay says sealed it, or null when there is none (or it is
 * not a sealed overlay). A key retirement keeps that key: the overlay must open at the next start.
 */
export async function overlaySealingKeyId(dataDir: string): Promise<string | null> {
  let outer: unknown;
  try {
    outer = JSON.parse(await readFile(overlayPath(dataDir), 'utf8'));
  } catch {
    return null;
  }
  if (!isPlainObject(outer) || outer.format !== SEALED_FORMAT || typeof outer.sealed !== 'string')
    return null;
  return sealedFileKeyId(Buffer.from(outer.sealed, 'base64'));
}

/** Stores the overlay sealed with the current queue key. */
export async function writeOverlay(dataDir: string, stored: StoredOverlay, keys: OverlayKeys): Promise<void> {
  const file = overlayPath(dataDir);
  const sealed = keys.sealFile(SEALED_FORMAT, Buffer.from(JSON.stringify(stored), 'utf8'));
  const body = { format: SEALED_FORMAT, sealed: Buffer.from(sealed).toString('base64') };
  // A temporary file left by a crash keeps its mode when reopened: start from a new one (0600).
  await rm(`${file}.tmp`, { force: true });
  await writeFileDurably(file, `${file}.tmp`, `${JSON.stringify(body)}\n`);
}

function errno(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}
