// What is in gateway.dataDir before LevelDB sees it, so that a damaged queue is never mistaken for
// a new one (LevelDB's createIfMissing would start an empty database there and delete the old
// tables as obsolete), and so that read-only commands never write to it.
//
// Only an absent or empty folder makes a new queue. Read-only commands (inspect, verify) open a
// private copy of the files in a temporary folder elsewhere: LevelDB writes even on a clean open
// (LOCK, LOG rotation, a new MANIFEST, the log turned into a table), and classic-level has no
// read-only mode. The copy also works when dataDir's filesystem is full.

import { constants } from 'node:fs';
import { copyFile, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EdgegwError, Exit } from '../errors.js';

export type FolderState = 'absent' | 'empty' | 'leveldb' | 'foreign';

/** LevelDB's own file names: CURRENT, LOCK, LOG, LOG.old, MANIFEST-n, n.log, n.ldb, n.sst, n.dbtmp. */
const LEVELDB_FILE = /^(CURRENT|LOCK|LOG|LOG\.old|MANIFEST-\d+|\d+\.(log|ldb|sst|dbtmp))$/;
/** Files a copy needs: not the lock or LevelDB's info log. */
const DATA_FILE = /^(CURRENT|MANIFEST-\d+|\d+\.(log|ldb|sst))$/;

export async function folderState(dir: string): Promise<FolderState> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw folderError(dir, err);
  }
  if (names.length === 0) return 'empty';
  return names.some((n) => LEVELDB_FILE.test(n)) ? 'leveldb' : 'foreign';
}

/**
 * Damage LevelDB would only find after it has already written to the folder (its info log is
 * rotated at every open): CURRENT missing, or naming a MANIFEST that is not there. A reason, or
 * null when both are in place. Checked before any open, so a refused start changes nothing.
 */
export async function missingEssentials(dir: string): Promise<string | null> {
  let current: string;
  try {
    current = await readFile(join(dir, 'CURRENT'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'its CURRENT file is missing';
    throw folderError(dir, err);
  }
  const manifest = current.trim();
  if (!/^MANIFEST-\d+$/.test(manifest)) return 'its CURRENT file does not name a MANIFEST';
  try {
    await stat(join(dir, manifest));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return `${manifest}, named by CURRENT, is missing`;
    throw folderError(dir, err);
  }
  return null;
}

export function folderError(dir: string, err: unknown): EdgegwError {
  const why = (err as { code?: unknown }).code;
  return new EdgegwError(
    'EDGEGW_E_QUEUE_OPEN',
    `cannot read the queue folder ${dir} (${String(why)}): check gateway.dataDir and who may read it`,
    Exit.UNAVAILABLE,
    { cause: err },
  );
}

export function foreignFolderError(dir: string): EdgegwError {
  return new EdgegwError(
    'EDGEGW_E_QUEUE_OPEN',
    `${dir} is not empty and holds no queue: point gateway.dataDir at the queue's folder, or at an empty or new one`,
    Exit.CONFIG,
  );
}

export function inUseError(dir: string, cause?: unknown): EdgegwError {
  return new EdgegwError(
    'EDGEGW_E_QUEUE_OPEN',
    `queue at ${dir} is in use — is the daemon running? Stop it or use \`edgegw status\``,
    Exit.UNAVAILABLE,
    cause === undefined ? undefined : { cause },
  );
}

/** `reason` is LevelDB's text (it names files, never stored values). */
export function damagedError(dir: string, reason: string, cause?: unknown): EdgegwError {
  return new EdgegwError(
    'EDGEGW_E_QUEUE_DAMAGED',
    `the queue at ${dir} is damaged and does not open (${reason}); nothing was changed. ` +
      'Stop the daemon, then run `edgegw queue repair` (it keeps a copy of the damaged files and every record that authenticates)',
    Exit.UNAVAILABLE,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Whether a process holds LevelDB's lock on `dir` (a POSIX lock on dir/LOCK), read from
 * /proc/locks without opening anything. False where /proc/locks cannot be read.
 */
export async function isLocked(dir: string): Promise<boolean> {
  let st;
  let locks: string;
  try {
    st = await stat(join(dir, 'LOCK'));
    locks = await readFile('/proc/locks', 'utf8');
  } catch {
    return false;
  }
  // Linux dev_t: major in bits 8..19 and 32.., minor in bits 0..7 and 20..; printed as hex.
  const dev = BigInt(st.dev);
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  const id = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${st.ino}`;
  return locks.split('\n').some((line) => line.split(/\s+/).includes(id));
}

/** Copies LevelDB's data files of `dir` into a new private temporary folder; returns its path. */
export async function privateCopy(dir: string): Promise<string> {
  const copy = await mkdtemp(join(tmpdir(), 'edgegw-queue-copy-'));
  try {
    for (const name of await readdir(dir)) {
      if (DATA_FILE.test(name)) await copyFile(join(dir, name), join(copy, name), constants.COPYFILE_EXCL);
    }
  } catch (err) {
    await rm(copy, { recursive: true, force: true });
    throw new EdgegwError(
      'EDGEGW_E_QUEUE_OPEN',
      `cannot copy the queue at ${dir} to ${tmpdir()} to read it (${String((err as { code?: unknown }).code)}): ` +
        'a read-only command needs room for a copy there (set TMPDIR to another folder)',
      Exit.UNAVAILABLE,
      { cause: err },
    );
  }
  return copy;
}
