// The flash figures' block device (section 6): an ext4 filesystem of its own on a loop device,
// made and mounted as Raspberry Pi OS has its SD card (ext4 with 4 KiB blocks, `noatime`), so the
// bytes that reach the device are read from the device's own counters (/sys/block/<dev>/stat, in
// 512-byte sectors) and nothing else on the machine writes to it. Needs root (losetup, mount), as
// CI runs.
//
// The block size is given: mke2fs picks 1 KiB blocks for an image under 512 MB ("small" in
// /etc/mke2fs.conf), and a synced append costs about 5.4 KB there against 18 KB with the 4 KiB
// blocks every SD card's partition has (fsyncFloor below, 300-byte appends).

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
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

export interface LoopFsOptions {
  /** ext4's fast commits (`-O fast_commit`): an fsync journals a small record, not a transaction. */
  fastCommit?: boolean;
}

export async function makeLoopFs(dir: string, sizeMiB: number, opts: LoopFsOptions = {}): Promise<LoopFs> {
  await mkdir(dir, { recursive: true });
  const image = join(dir, 'flash.img');
  const mount = join(dir, 'mnt');
  await mkdir(mount);
  run('truncate', ['-s', `${sizeMiB}M`, image]);
  const dev = run('losetup', ['--find', '--show', image]);
  const device = basename(dev);
  try {
    // Inode tables and journal zeroed now, not by ext4lazyinit in the background while counting.
    const features = opts.fastCommit === true ? ['-O', 'fast_commit'] : [];
    run('mkfs.ext4', [
      '-q',
      '-F',
      '-b',
      '4096',
      ...features,
      '-E',
      'lazy_itable_init=0,lazy_journal_init=0',
      dev,
    ]);
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

/**
 * What one commit costs the device at the least on `fs`: `commits` appends of `bytes` to a file of
 * its own, each followed by `fdatasync`, `intervalMs` apart (a commit's LevelDB log append and
 * sync, without LevelDB). Bytes at the device per append, counted as the daemon's figures are.
 */
export async function fsyncFloor(
  fs: LoopFs,
  o: { commits: number; bytes: number; intervalMs: number },
): Promise<number> {
  const file = await open(join(fs.mount, 'fsync-floor'), 'w');
  try {
    const chunk = Buffer.alloc(Math.max(1, Math.round(o.bytes)), 0x5a);
    await file.write(chunk);
    await file.datasync();
    fs.sync();
    const before = fs.bytesWritten();
    for (let i = 0; i < o.commits; i++) {
      await sleep(o.intervalMs);
      await file.write(chunk);
      await file.datasync();
    }
    fs.sync();
    return (fs.bytesWritten() - before) / o.commits;
  } finally {
    await file.close();
    await rm(join(fs.mount, 'fsync-floor'), { force: true });
  }
}
