// Files the identity commands write must stay readable by the daemon's user. `sudo edgegw
// provision` runs as root, and a file root creates is root's (root:root 0600 for a key): the
// daemon (user edgegw) could not read it. So, when running as root, a new file takes the owner and
// group of the file it replaces, or, when there is none, of the folder it is written in (the
// identity folder belongs to the service user). Not as root, a process cannot give a file away:
// its files are its own, as before.

import { open, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { syncFolder } from '../durable-file.js';

export interface Owner {
  uid: number;
  gid: number;
}

/** Who a file written in place of `replaces` should belong to; null when not running as root. */
export async function ownerFor(replaces: string): Promise<Owner | null> {
  if (process.getuid?.() !== 0) return null;
  const st = await stat(replaces).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
    return stat(dirname(replaces));
  });
  return { uid: st.uid, gid: st.gid };
}

/**
 * Creates `file` (an older one is removed first) with exactly `mode` and, as root, the owner of
 * `replaces` (or of its folder), set on the open descriptor before any byte is written; synced.
 */
export async function writeOwned(file: string, data: string, mode: number, replaces: string): Promise<void> {
  const owner = await ownerFor(replaces);
  await removeIfThere(file);
  const f = await open(file, 'wx', mode);
  try {
    if (owner !== null) await f.chown(owner.uid, owner.gid);
    // The umask may have taken bits away, never added: make the mode exact.
    await f.chmod(mode);
    await f.writeFile(data);
    await f.sync();
  } finally {
    await f.close();
  }
}

/**
 * Replaces an existing `file` atomically and durably (a temp file beside it, synced, renamed over
 * it, the folder synced), keeping its mode and, as root, its owner and group.
 */
export async function replaceKeepingOwner(file: string, data: string): Promise<void> {
  const mode = (await stat(file)).mode & 0o7777;
  const tmp = `${file}.tmp`;
  await writeOwned(tmp, data, mode, file);
  await rename(tmp, file);
  await syncFolder(dirname(file));
}

export async function removeIfThere(file: string): Promise<void> {
  await unlink(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}
