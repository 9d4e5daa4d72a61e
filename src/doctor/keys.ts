// Private key files (queue key, previous queue keys, TLS key) and the folders that hold them. The
// file check is the daemon's own (assertPrivateFile), so doctor and `edgegw run` never disagree.
// A folder others may write to lets them swap the key for their own, so it is checked too.

import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { SiteConfig } from '../config/schema.js';
import { EdgegwError } from '../errors.js';
import { assertPrivateFile } from '../seal/keyfile.js';
import { errCode, fail, pass, warn, type CheckLine } from './check.js';

interface KeyFile {
  key: string;
  path: string;
}

export function keyFiles(site: SiteConfig): KeyFile[] {
  return [
    { key: 'queue.keyFile', path: site.queue.keyFile },
    ...site.queue.previousKeyFiles.map((path, i) => ({ key: `queue.previousKeyFiles[${i}]`, path })),
    { key: 'uplink.key', path: site.uplink.key },
  ];
}

export async function checkKeyFile(k: KeyFile): Promise<CheckLine> {
  const name = `key mode ${k.key}`;
  try {
    await assertPrivateFile(k.path, k.key);
  } catch (err) {
    if (!(err instanceof EdgegwError)) throw err;
    const fix =
      err.code === 'EDGEGW_E_KEY_PERMS' ? `chmod 600 ${k.path}` : `check ${k.key} in the configuration`;
    return fail(name, err.message, fix);
  }
  const mode = (await stat(k.path)).mode & 0o777;
  return pass(name, `${k.path} has mode ${octal(mode)}`);
}

/** Folders of the key files, each once: nobody but the owner may write in them. */
export async function checkKeyFolders(site: SiteConfig): Promise<CheckLine[]> {
  const dirs = [...new Set(keyFiles(site).map((k) => dirname(k.path)))];
  return Promise.all(dirs.map(checkKeyFolder));
}

async function checkKeyFolder(dir: string): Promise<CheckLine> {
  const name = `key folder ${dir}`;
  let mode: number;
  try {
    mode = (await stat(dir)).mode;
  } catch (err) {
    return fail(name, `${dir} cannot be read (${errCode(err)})`, `check the key paths in the configuration`);
  }
  const perms = mode & 0o777;
  const found = `${dir} has mode ${octal(perms)}`;
  const fix = `chmod go-w ${dir}`;
  // The sticky bit (as on /tmp) stops others from replacing a file they do not own.
  if ((perms & 0o002) !== 0 && (mode & 0o1000) === 0)
    return fail(name, `${found}: anyone may replace the keys in it`, fix);
  if ((perms & 0o020) !== 0) return warn(name, `${found}: the group may replace the keys in it`, fix);
  return pass(name, found);
}

export const octal = (mode: number): string => `0${mode.toString(8).padStart(3, '0')}`;
