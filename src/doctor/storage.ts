// The data directory and the status socket's folder. The queue is never opened (LevelDB writes
// even on a clean open, and the daemon may hold it): doctor looks at names, modes and statfs only.

import { constants } from 'node:fs';
import { access, readdir, stat, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { SiteConfig } from '../config/schema.js';
import { folderState, isLocked } from '../queue/db-folder.js';
import { errCode, fail, humanSize, pass, warn, type CheckLine } from './check.js';

/** The folder itself, or its nearest existing ancestor (the daemon creates the rest). */
async function existing(dir: string): Promise<string> {
  let cur = dir;
  for (;;) {
    try {
      await stat(cur);
      return cur;
    } catch {
      const up = dirname(cur);
      if (up === cur) return cur;
      cur = up;
    }
  }
}

async function writable(dir: string): Promise<string | null> {
  try {
    await access(dir, constants.W_OK | constants.X_OK);
    return null;
  } catch (err) {
    return errCode(err);
  }
}

/** A folder the daemon writes in: it exists and is writable, or it can be created. */
async function checkFolder(name: string, key: string, dir: string): Promise<CheckLine> {
  const at = await existing(dir);
  const denied = await writable(at);
  if (at !== dir) {
    if (denied !== null)
      return fail(
        name,
        `${key} ${dir} does not exist and ${at} is not writable (${denied})`,
        `mkdir -p ${dir}`,
      );
    return pass(name, `${key} ${dir} does not exist yet; the daemon creates it (${at} is writable)`);
  }
  if (!(await stat(dir)).isDirectory())
    return fail(name, `${key} ${dir} is not a folder`, `set ${key} to a folder`);
  if (denied !== null)
    return fail(
      name,
      `${key} ${dir} is not writable (${denied})`,
      `chown the folder to the service user: chown edgegw ${dir}`,
    );
  return pass(name, `${key} ${dir} exists and is writable`);
}

export async function checkDataDir(site: SiteConfig): Promise<CheckLine[]> {
  const dir = site.gateway.dataDir;
  const folder = await checkFolder('data dir', 'gateway.dataDir', dir);
  if (folder.result === 'FAIL') return [folder];
  let state;
  try {
    state = await folderState(dir);
  } catch (err) {
    return [
      fail('data dir', `gateway.dataDir ${dir} cannot be read (${errCode(err)})`, `chown edgegw ${dir}`),
    ];
  }
  if (state === 'foreign')
    return [
      fail(
        'data dir',
        `gateway.dataDir ${dir} is not empty and holds no queue: the daemon refuses it`,
        'point gateway.dataDir at the queue folder, or at an empty or new one',
      ),
    ];
  const held =
    state === 'leveldb' && (await isLocked(dir)) ? '; the queue is in use by the running daemon' : '';
  return [pass('data dir', `${folder.found}${held}`), await checkFreeSpace(site, dir)];
}

/** Bytes the folder's files occupy (allocated blocks), like the queue counts them. */
async function used(dir: string): Promise<number> {
  let total = 0;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  for (const n of names) {
    const st = await stat(join(dir, n)).catch(() => null);
    if (st?.isFile() === true) total += st.blocks * 512;
  }
  return total;
}

async function checkFreeSpace(site: SiteConfig, dir: string): Promise<CheckLine> {
  const at = await existing(dir);
  const fs = await statfs(at);
  const free = fs.bavail * fs.bsize;
  // The queue's own rule (src/queue/disk.ts): the reserve is at most an eighth of the filesystem.
  const reserve = Math.min(site.queue.minFreeBytes, Math.floor((fs.blocks * fs.bsize) / 8));
  const { maxBytes } = site.queue;
  const room = Math.max(0, free - reserve) + (await used(dir));
  const found =
    `${humanSize(free)} free on the filesystem of ${at}; queue.maxBytes ${humanSize(maxBytes)}, ` +
    `reserve (queue.minFreeBytes) ${humanSize(reserve)}`;
  const fix = `free space on that filesystem, or lower queue.maxBytes to at most ${humanSize(room)}`;
  if (free <= reserve) return fail('data free space', `${found}: the queue cannot grow at all`, fix);
  if (room < maxBytes)
    return warn('data free space', `${found}: the queue can reach only ${humanSize(room)}`, fix);
  return pass('data free space', found);
}

export async function checkSocketFolder(site: SiteConfig): Promise<CheckLine> {
  return checkFolder('status socket folder', 'status.socket', dirname(site.status.socket));
}
