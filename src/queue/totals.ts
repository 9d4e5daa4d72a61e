// The queue's lifetime totals: what it ever committed, and where each committed record went
// (delivered, dropped by the whenFull policy, quarantined). They are put in META_TOTALS in the
// same batch as every change, beside META_FIGURES, so on disk at every instant
//   committed = delivered + dropped + quarantined + queued
// holds for records and for readings, whenever the process dies (DESIGN.md §2).

import type { Db } from './store.js';
import { META_TOTALS } from './keys.js';

export interface QueueTotals {
  committedRecords: number;
  committedReadings: number;
  deliveredRecords: number;
  deliveredReadings: number;
  droppedRecords: number;
  droppedReadings: number;
  quarantinedRecords: number;
  quarantinedReadings: number;
}

const FIELDS = [
  'committedRecords',
  'committedReadings',
  'deliveredRecords',
  'deliveredReadings',
  'droppedRecords',
  'droppedReadings',
  'quarantinedRecords',
  'quarantinedReadings',
] as const satisfies readonly (keyof QueueTotals)[];

export function zeroTotals(): QueueTotals {
  return {
    committedRecords: 0,
    committedReadings: 0,
    deliveredRecords: 0,
    deliveredReadings: 0,
    droppedRecords: 0,
    droppedReadings: 0,
    quarantinedRecords: 0,
    quarantinedReadings: 0,
  };
}

/** `t` with `delta` added (fields absent from delta unchanged). */
export function addTotals(t: QueueTotals, delta: Partial<QueueTotals>): QueueTotals {
  const out = { ...t };
  for (const f of FIELDS) out[f] += delta[f] ?? 0;
  return out;
}

export function totalsValue(t: QueueTotals): Uint8Array {
  const b = new Uint8Array(8 * FIELDS.length);
  const v = new DataView(b.buffer);
  FIELDS.forEach((f, i) => v.setFloat64(8 * i, t[f]));
  return b;
}

/** The stored totals, or null when absent or malformed. */
export function readTotals(b: Uint8Array | undefined): QueueTotals | null {
  if (b?.length !== 8 * FIELDS.length) return null;
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  const t = zeroTotals();
  FIELDS.forEach((f, i) => (t[f] = v.getFloat64(8 * i)));
  return Object.values(t).every((n) => Number.isSafeInteger(n) && n >= 0) ? t : null;
}

/**
 * The stored totals, made to agree with what is queued: a queue written before totals were kept
 * (or whose figures were recounted) gets `committed` derived from the rest. Reads only, so a
 * read-only command never writes; the next change persists the result.
 */
export async function loadTotals(
  db: Db,
  queued: { records: number; readings: number; quarantined: number },
): Promise<{ totals: QueueTotals; derived: boolean }> {
  const stored = readTotals(await db.get(META_TOTALS));
  const t = stored ?? { ...zeroTotals(), quarantinedRecords: queued.quarantined };
  const records = t.deliveredRecords + t.droppedRecords + t.quarantinedRecords + queued.records;
  const readings = t.deliveredReadings + t.droppedReadings + t.quarantinedReadings + queued.readings;
  const agrees = t.committedRecords === records && t.committedReadings === readings;
  if (stored !== null && agrees) return { totals: t, derived: false };
  return { totals: { ...t, committedRecords: records, committedReadings: readings }, derived: true };
}
