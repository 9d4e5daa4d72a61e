// Private key files (queue key, previous queue keys, TLS key) and the folders that hold them. The
// file check is the daemon's own (assertPrivateFile), so doctor and `edgegw run` never disagree.
// A folder others may write to lets them swap the key for their own, so it is checked too.

import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { keyFiles, type KeyFile } from '../config/key-files.js';
import type { SiteConfig } from '../config/schema.js';
import { EdgegwError } from '../errors.js';
import { assertPrivateFile } from '../seal/keyfile.js';
import { errCode, fail, pass, warn, type CheckLine } from './check.js';

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

/** The unit's ProtectSystem=strict keeps these read-only to the daemon, whatever their modes say. */
const READ_ONLY_TO_THE_UNIT = ['/etc/', '/usr/', '/opt/', '/boot/'];

/**
 * The folder of uplink.cert and uplink.key: a certificate rotation writes `.next` files there and
 * renames them, as the key's owner (the daemon's user). A folder that user cannot write, or one the
 * unit mounts read-only, makes every rotation roll back: WARN, since a gateway may never rotate.
 */
export async function checkIdentityFolders(site: SiteConfig): Promise<CheckLine[]> {
  let keyOwner: number;
  try {
    keyOwner = (await stat(site.uplink.key)).uid;
  } catch {
    return []; // The key mode line already names a key that cannot be read.
  }
  const dirs = [...new Set([dirname(site.uplink.cert), dirname(site.uplink.key)])];
  return Promise.all(
    dirs.map(async (dir) => {
      const st = await stat(dir).catch(() => null);
      return st === null ? [] : [identityFolderLine(dir, { uid: st.uid, mode: st.mode }, keyOwner)];
    }),
  ).then((l) => l.flat());
}

export function identityFolderLine(
  dir: string,
  st: { uid: number; mode: number },
  keyOwner: number,
): CheckLine {
  const name = `identity folder ${dir}`;
  const fix =
    'keep uplink.cert and uplink.key in a folder of their own that the daemon owns, e.g. ' +
    '/var/lib/edgegw-identity (README "Installing on a gateway")';
  const prefix = `${dir}/`;
  if (READ_ONLY_TO_THE_UNIT.some((ro) => prefix.startsWith(ro))) {
    return warn(
      name,
      `${dir} is read-only to the edgegw unit (ProtectSystem=strict): a certificate rotation cannot write there`,
      fix,
    );
  }
  if (st.uid !== keyOwner || (st.mode & 0o200) === 0) {
    return warn(
      name,
      `${dir} (owner uid ${st.uid}, mode ${octal(st.mode & 0o777)}) is not writable by the key's owner (uid ${keyOwner}): a certificate rotation cannot write there`,
      fix,
    );
  }
  return pass(name, `${dir} is writable by the key's owner (uid ${keyOwner}) for a certificate rotation`);
}

export const octal = (mode: number): string => `0${mode.toString(8).padStart(3, '0')}`;
