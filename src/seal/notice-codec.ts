// Plaintext of a notice record (what gets sealed, like a record's readings): a why byte, then
// from and to as uvarints, then readings + 1 as a uvarint (0 = not known). A notice holds no
// reading values, only seq ranges and counts (DESIGN.md §2.6), but it is sealed all the same so
// that every value in the record range authenticates the same way and binds its seq.

import type { GapNotice, GapWhy } from '../types.js';
import { ByteReader, ByteWriter } from './bytes.js';

const WHYS: readonly GapWhy[] = ['dropped', 'quarantined', 'write-failed', 'skipped'];

export function encodeNotice(n: GapNotice): Uint8Array {
  const w = new ByteWriter(24);
  const why = WHYS.indexOf(n.why);
  if (why < 0) throw new RangeError('unknown notice reason');
  if (!(Number.isSafeInteger(n.from) && Number.isSafeInteger(n.to) && n.from >= 1 && n.to >= n.from)) {
    throw new RangeError('a notice covers a seq range from..to with 1 <= from <= to');
  }
  w.byte(why);
  w.uvarint(n.from);
  w.uvarint(n.to);
  w.uvarint(n.readings === null ? 0 : n.readings + 1);
  return w.finish();
}

export function decodeNotice(bytes: Uint8Array): GapNotice {
  const r = new ByteReader(bytes);
  const why = WHYS[r.byte()];
  if (why === undefined) throw new RangeError('unknown notice reason');
  const from = r.uvarint();
  const to = r.uvarint();
  const n = r.uvarint();
  if (r.remaining !== 0) throw new RangeError('trailing bytes after a notice');
  if (from < 1 || to < from) throw new RangeError('bad notice range');
  return { from, to, why, readings: n === 0 ? null : n - 1 };
}
