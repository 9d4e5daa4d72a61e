// A seq ceiling kept outside LevelDB (DESIGN.md §2.1: seq is never reused, across crashes too).
// The stored next seq lives in the same tables as the records, so damage that loses the newest
// table (a deleted file, a card that dropped its last writes) loses it with them, and a repair
// would hand those seqs out again. The mark file says: no seq at or above this number was ever
// used. It is raised before the first seq at the mark is used, by MARK_STEP at a time (one small
// synced write per MARK_STEP records), written to a temporary file, fsync'd, then renamed.

import { writeFileDurably } from '../durable-file.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const SEQ_MARK_FILE = 'edgegw-seq';
export const MARK_STEP = 4096;

/** The ceiling stored in `dir`, or 0 when there is none (a queue from before marks, or a new one). */
export async function readSeqMark(dir: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(join(dir, SEQ_MARK_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const n = Number(text.trim());
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

/** Durably records that no seq ≥ `ceiling` has been used. */
export async function writeSeqMark(dir: string, ceiling: number): Promise<void> {
  const path = join(dir, SEQ_MARK_FILE);
  await writeFileDurably(path, `${path}.tmp`, `${ceiling}\n`);
}
