// Queue keys made by a rotate-queue-key job (issue 11) in queue.rotatedKeysDir: `<keyid>.key` files
// (32 random bytes, 0600, never overwritten, like `edgegw keygen`) and `current.json`, which names
// the newest and the queue.keyFile key it replaced. At start the newest seals new records as long
// as queue.keyFile still holds that replaced key (a technician who rotates by hand later wins);
// every other key there, and queue.keyFile's, only opens older records (the queue's key ranges say
// which). The job's key seals at once too: the daemon switches the running queue to it
// (queue-key-rotation.ts). A key here that no stored record was sealed with any more is moved to
// `retired/` (never deleted, never loaded again; move it back to use it). The folder is kept
// outside gateway.dataDir, as the key file is (DESIGN.md §2).

import { mkdir, readFile, readdir, rename } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { syncFolder, writeFileDurably } from '../durable-file.js';
import { readQueueKey, writeNewKeyFile } from './keyfile.js';
import { Keyring, keyIdOf } from './keyring.js';

export interface RotatedKeys {
  /** The key file that seals from now on, when queue.keyFile is still the key it replaced. */
  current: string | null;
  /** Every other rotated key file. */
  previous: string[];
}

interface CurrentFile {
  id: string;
  /** Key id of queue.keyFile when this key replaced it. */
  basedOn: string;
}

const CURRENT = 'current.json';
/** Where keys no stored record needs any more are moved (inside the rotated keys folder). */
export const RETIRED = 'retired';

/** The rotated keys, given the key id of queue.keyFile; none when the folder does not exist. */
export async function rotatedKeys(dir: string, keyFileId: string): Promise<RotatedKeys> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { current: null, previous: [] };
    throw err;
  }
  const files = names.filter((n) => /^[0-9a-f]{32}\.key$/.test(n)).sort();
  let cur: CurrentFile | null = null;
  try {
    cur = JSON.parse(await readFile(join(dir, CURRENT), 'utf8')) as CurrentFile;
  } catch {
    cur = null;
  }
  const currentName = cur !== null && cur.basedOn === keyFileId ? `${cur.id}.key` : null;
  const current = currentName !== null && files.includes(currentName) ? join(dir, currentName) : null;
  return { current, previous: files.map((n) => join(dir, n)).filter((f) => f !== current) };
}

/** Writes a new key and makes it the newest; returns its key id (never the key). */
export async function rotateKey(dir: string, replacedId: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `new-${process.pid}-${Date.now()}.key.tmp`);
  await writeNewKeyFile(tmp);
  const id = await keyFileId(tmp);
  await rename(tmp, join(dir, `${id}.key`));
  const cur: CurrentFile = { id, basedOn: replacedId };
  await writeFileDurably(join(dir, CURRENT), join(dir, `${CURRENT}.tmp`), JSON.stringify(cur));
  return id;
}

/**
 * Moves each of `files` that lies directly in `dir` to `dir/retired/` (0700), then fsyncs both
 * folders, so a power cut leaves each key in one place or the other. The files moved.
 */
export async function retireKeyFiles(dir: string, files: readonly string[]): Promise<string[]> {
  const here = files.filter((f) => dirname(resolve(f)) === resolve(dir));
  if (here.length === 0) return [];
  const to = join(dir, RETIRED);
  await mkdir(to, { recursive: true, mode: 0o700 });
  const moved: string[] = [];
  for (const f of here) {
    // Same name, same key (a key id names its key): an older copy there may be replaced.
    await rename(f, join(to, basename(f)));
    moved.push(f);
  }
  for (const d of [to, dir]) await syncFolder(d);
  return moved;
}

/** The keyring a start uses: queue.keyFile and queue.previousKeyFiles, and the rotated keys. */
export async function loadQueueKeyring(q: {
  keyFile: string;
  previousKeyFiles: readonly string[];
  rotatedKeysDir?: string | undefined;
}): Promise<Keyring> {
  if (q.rotatedKeysDir === undefined) return Keyring.load(q.keyFile, q.previousKeyFiles);
  const r = await rotatedKeys(q.rotatedKeysDir, await keyFileId(q.keyFile));
  return r.current === null
    ? Keyring.load(q.keyFile, [...q.previousKeyFiles, ...r.previous])
    : Keyring.load(r.current, [q.keyFile, ...q.previousKeyFiles, ...r.previous]);
}

/** The key id of a key file (the bytes read are wiped). */
export async function keyFileId(file: string): Promise<string> {
  const key = await readQueueKey(file);
  try {
    return await keyIdOf(key);
  } finally {
    key.fill(0);
  }
}
