// The flash figures' block device (section 6): an ext4 filesystem of its own on a loop device,
// mounted as Raspberry Pi OS mounts its SD card (ext4, `noatime`), so the bytes that reach the
// device are read from the device's own counters (/sys/block/<dev>/stat, in 512-byte sectors)
// and nothing else on the machine writes to it. Needs root (losetup, mount), as CI runs.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';

export interface LoopFs {
  /** Where the filesystem is mounted. */
  mount: string;
  /** The loop device's name, e.g. loop3. */
  device: string;
  /** Bytes written to the device since it was created (sectors written × 512). */
  bytesWritten(): number;
  /** Writes back what the filesystem holds dirty (sync -f), so it is counted now. */
  sync(): void;
  close(): Promise<void>;
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
  return r.stdout.trim();
}

/** Why a loop filesystem cannot be made here (null: it can). */
export function loopFsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (losetup and mount)';
  for (const tool of ['losetup', 'mkfs.ext4', 'mount', 'umount']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return null;
}

export async function makeLoopFs(dir: string, sizeMiB: number): Promise<LoopFs> {
  await mkdir(dir, { recursive: true });
  const image = join(dir, 'flash.img');
  const mount = join(dir, 'mnt');
  await mkdir(mount);
  run('truncate', ['-s', `${sizeMiB}M`, image]);
  const dev = run('losetup', ['--find', '--show', image]);
  const device = basename(dev);
  try {
    // Inode tables and journal zeroed now, not by ext4lazyinit in the background while counting.
    run('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', dev]);
    run('mount', ['-o', 'noatime', dev, mount]);
  } catch (err) {
    spawnSync('losetup', ['-d', dev]);
    throw err;
  }
  return {
    mount,
    device,
    bytesWritten: () =>
      Number(readFileSync(`/sys/block/${device}/stat`, 'utf8').trim().split(/\s+/)[6]) * 512,
    sync: () => void run('sync', ['-f', mount]),
    close: async () => {
      spawnSync('umount', [mount]);
      spawnSync('losetup', ['-d', dev]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
