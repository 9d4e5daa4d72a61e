// A real, small filesystem for disk-full tests: a tmpfs of `bytes` mounted on a fresh folder
// (needs root, as CI runs). `fill` takes space with a file of its own, `free` gives it back, so a
// test can fill the disk under the queue and then free it.

import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, open, rm, statfs, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface SmallFs {
  /** The mount point. */
  dir: string;
  /** Bytes free to an unprivileged writer now. */
  available(): Promise<number>;
  /** Writes filler until at most `leave` bytes are free (ENOSPC ends the fill quietly). */
  fill(leave?: number): Promise<void>;
  /** Removes the filler. */
  free(): Promise<void>;
  /** Unmounts and removes the mount point; safe to call twice. */
  cleanup(): Promise<void>;
}

/** Mounts a tmpfs of `bytes` on `at` (created), or on a fresh temp folder. */
export async function smallFs(bytes: number, at?: string): Promise<SmallFs> {
  const dir = at ?? (await mkdtemp(join(tmpdir(), 'edgegw-smallfs-')));
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await run('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', dir]);
  const filler = join(dir, 'filler');
  let mounted = true;
  const available = async (): Promise<number> => {
    const s = await statfs(dir);
    return s.bavail * s.bsize;
  };
  return {
    dir,
    available,
    fill: async (leave = 0) => {
      const fh = await open(filler, 'a');
      try {
        const chunk = Buffer.alloc(4096, 0xa5);
        for (let free = await available(); free > leave; free -= chunk.length) {
          await fh.write(chunk.subarray(0, Math.min(chunk.length, free - leave)));
        }
        await fh.sync();
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'ENOSPC') throw err;
      } finally {
        await fh.close();
      }
    },
    free: async () => {
      await unlink(filler).catch(() => undefined);
    },
    cleanup: async () => {
      if (mounted) {
        mounted = false;
        await run('umount', [dir]);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
