// Queue key files: 32 random bytes, created once with `edgegw keygen`, never overwritten, and
// refused unless only the owner may read them (DESIGN.md §4). Messages name the file and what
// to do; they never contain key bytes.

import { randomBytes } from 'node:crypto';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EdgegwError, Exit } from '../errors.js';

export const QUEUE_KEY_BYTES = 32;

/** Writes a new random queue key with mode 0600; refuses to touch an existing file. */
export async function writeNewKeyFile(path: string): Promise<void> {
  let handle;
  try {
    // O_EXCL ('wx'): never overwrite, even if the file appears between a check and the create.
    handle = await open(path, 'wx', 0o600);
  } catch (err) {
    throw createError(path, err);
  }
  let written = false;
  try {
    // The umask may have narrowed the mode already, but a permissive create mode would not be
    // caught by it; set 0600 explicitly.
    await handle.chmod(0o600);
    await handle.writeFile(randomBytes(QUEUE_KEY_BYTES));
    await handle.sync();
    written = true;
  } catch (err) {
    throw new EdgegwError(
      'EDGEGW_E_KEY_READ',
      `cannot write the key file ${path}: ${errCode(err)}`,
      Exit.CANTCREAT,
      {
        cause: err,
      },
    );
  } finally {
    await handle.close();
    // A half-written key is worse than none: the next keygen would refuse to replace it.
    if (!written) await unlink(path).catch(() => undefined);
  }
}

function createError(path: string, err: unknown): EdgegwError {
  const code = errCode(err);
  const dir = dirname(path);
  switch (code) {
    case 'EEXIST':
      return new EdgegwError(
        'EDGEGW_E_KEY_EXISTS',
        `${path} already exists; keygen never overwrites a key (records sealed with it would become unreadable). ` +
          `Move it away first or choose another file name`,
        Exit.CANTCREAT,
      );
    case 'ENOENT':
      return new EdgegwError(
        'EDGEGW_E_KEY_CREATE',
        `cannot create ${path}: the folder ${dir} does not exist. Fix: mkdir -p ${dir}`,
        Exit.CANTCREAT,
      );
    case 'EACCES':
    case 'EPERM':
      return new EdgegwError(
        'EDGEGW_E_KEY_CREATE',
        `cannot create ${path}: permission denied in ${dir}. Fix: run as a user allowed to write there (e.g. sudo)`,
        Exit.CANTCREAT,
      );
    default:
      return new EdgegwError('EDGEGW_E_KEY_CREATE', `cannot create ${path}: ${code}`, Exit.CANTCREAT, {
        cause: err,
      });
  }
}

/** Refuses a private key file that group or others have any permission on (exit 77). */
export async function assertPrivateFile(path: string, what: string): Promise<void> {
  let mode: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) {
      throw new EdgegwError('EDGEGW_E_KEY_READ', `${what} ${path} is not a regular file`, Exit.CONFIG);
    }
    mode = st.mode & 0o777;
  } catch (err) {
    if (err instanceof EdgegwError) throw err;
    throw new EdgegwError('EDGEGW_E_KEY_READ', `cannot read ${what} ${path}: ${errCode(err)}`, Exit.CONFIG, {
      cause: err,
    });
  }
  if ((mode & 0o077) !== 0) {
    const octal = `0${mode.toString(8).padStart(3, '0')}`;
    throw new EdgegwError(
      'EDGEGW_E_KEY_PERMS',
      `${what} ${path} has mode ${octal}: group or others may read it. Fix: chmod 600 ${path}`,
      Exit.NOPERM,
    );
  }
}

/** The 32-byte queue key, after checking the file's permissions. */
export async function readQueueKey(path: string): Promise<Uint8Array> {
  await assertPrivateFile(path, 'queue key file');
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new EdgegwError(
      'EDGEGW_E_KEY_READ',
      `cannot read queue key file ${path}: ${errCode(err)}`,
      Exit.CONFIG,
      {
        cause: err,
      },
    );
  }
  if (bytes.length !== QUEUE_KEY_BYTES) {
    const n = bytes.length;
    bytes.fill(0);
    throw new EdgegwError(
      'EDGEGW_E_KEY_READ',
      `queue key file ${path} holds ${n} bytes, not ${QUEUE_KEY_BYTES}: it is not a queue key. ` +
        `Create one with \`edgegw keygen FILE\``,
      Exit.CONFIG,
    );
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

function errCode(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string')
    return err.code;
  return err instanceof Error ? err.message : String(err);
}
