// A file replaced atomically and durably: written to `tmp` in the same folder, fsync'd, renamed over
// the target, and the folder fsync'd, so after a power cut the file holds the old content or the new,
// never a torn one. Imports nothing but node: builtins (the consumer library shares it).

import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

export async function writeFileDurably(path: string, tmp: string, data: string): Promise<void> {
  const f = await open(tmp, 'w', 0o600);
  try {
    await f.writeFile(data);
    await f.sync();
  } finally {
    await f.close();
  }
  await rename(tmp, path);
  await syncFolder(dirname(path));
}

/** fsyncs a folder, so the names created, renamed or removed in it survive a power cut. */
export async function syncFolder(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
