// The nonce salts (seal/nonce-salts.ts) kept beside the database as well as in its meta, as the
// seq mark is (seq-mark.ts): damage that loses the meta's table would otherwise leave every
// compact record unopenable, and a repair reads them from here. One line per epoch: fromSeq, then
// the salt in hex. Written like the mark: to a temporary file, fsync'd, then renamed.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../durable-file.js';
import { SALT_BYTES, type SaltEpoch } from '../seal/nonce-salts.js';

export const SALTS_FILE = 'edgegw-salts';

/** The epochs stored in `dir`'s file: none when there is no file, null when it is malformed. */
export async function readSaltFile(dir: string): Promise<SaltEpoch[] | null> {
  let text: string;
  try {
    text = await readFile(join(dir, SALTS_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: SaltEpoch[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const m = /^(\d{1,16}) ([0-9a-f]+)$/.exec(line);
    const fromSeq = Number(m?.[1]);
    if (m === null || !Number.isSafeInteger(fromSeq) || fromSeq < 1 || m[2]!.length !== 2 * SALT_BYTES)
      return null;
    if (out.length > 0 && fromSeq <= out.at(-1)!.fromSeq) return null;
    out.push({ fromSeq, salt: Uint8Array.from(Buffer.from(m[2]!, 'hex')) });
  }
  return out;
}

/** Durably replaces `dir`'s file with `epochs`. */
export async function writeSaltFile(dir: string, epochs: readonly SaltEpoch[]): Promise<void> {
  const text = epochs.map((e) => `${e.fromSeq} ${Buffer.from(e.salt).toString('hex')}\n`).join('');
  const path = join(dir, SALTS_FILE);
  await writeFileDurably(path, `${path}.tmp`, text);
}
