// Changing keys while the queue runs (key-ranges.ts). A live switch (a rotate-queue-key job)
// writes the new key's range, synced, before anything is sealed with the new key: a crash after it
// restarts with the new key current (its file and rotatedKeysDir/current.json were written first),
// and a crash before it restarts with the same. Retiring: once every seq of the oldest ranges is
// gone (no record stored or held, no notice queued), those ranges and the dictionary entries their
// keys sealed are deleted in one batch with the pending tombstones, so a crash can never bring back
// a record whose key the queue no longer names; only then is a key file moved aside (by the daemon,
// told through opts.keysRetired).

import { entryKeyId } from '../seal/sealer.js';
import { drainedRanges, encodeRanges, withRange, META_KEYS, type QueueKeys } from './key-ranges.js';
import { KIND_SENSOR_ID, META_FIGURES, queueKey } from './keys.js';
import type { QueueStore } from './store.js';

/**
 * In the mutation chain: `keys.current` seals from the next seq on. `seat` switches the sealer
 * (called once the range is on disk, before any later seal). Returns the first seq it seals.
 */
export async function switchKey(store: QueueStore, keys: QueueKeys, seat: () => void): Promise<number> {
  const db = store.open();
  const fromSeq = store.s.nextSeq;
  const ranges = withRange(store.keyRanges, keys.current, fromSeq);
  try {
    // Synced whatever queue.durability says: the range must never be lost behind a record.
    await db.put(META_KEYS, encodeRanges(ranges), { sync: true });
  } catch (err) {
    store.broken = err;
    throw err;
  }
  store.keyRanges = ranges;
  // A reopen after a failed write settles the ranges with these keys.
  store.opts.keys = keys;
  seat();
  return fromSeq;
}

/** The lowest seq whose key is still needed (stored, held or queued notice), or null if unknown. */
export function lowestInUse(store: QueueStore): number | null {
  const s = store.s;
  // The head index is being refilled: the lowest stored record is not known from memory.
  if (s.records > 0 && s.firstSeq === null) return null;
  let lowest = Math.min(s.firstSeq ?? Infinity, store.held.lowest());
  for (const rec of store.notices.from(0)) lowest = Math.min(lowest, rec.seq);
  return lowest;
}

/** Whether some oldest key range has drained (cheap: checked after deletes and drops). */
export function hasDrained(store: QueueStore): boolean {
  if (store.keyRanges.length < 2 || store.opts.keys === undefined || store.opts.readOnly === true)
    return false;
  const lowest = lowestInUse(store);
  return lowest !== null && drainedRanges(store.keyRanges, lowest) !== null;
}

/** In the mutation chain: forgets the drained ranges and their entries; the key ids retired. */
export async function forgetDrained(store: QueueStore): Promise<string[]> {
  if (!hasDrained(store)) return [];
  const d = drainedRanges(store.keyRanges, lowestInUse(store)!)!;
  const retired = new Set(d.retired);
  const entries = store.ids
    .all()
    .filter(([, e]) => {
      const id = entryKeyId(e);
      return id !== null && retired.has(id);
    })
    .map(([i]) => i);
  const b = store.open().batch().put(META_KEYS, encodeRanges(d.kept));
  for (const i of entries) b.del(queueKey(KIND_SENSOR_ID, i));
  // Unwritten ones (a held record's, acknowledged before its commit) are not written either.
  store.ids.forget(entries);
  // write() adds the pending tombstones: the drained records' deletes reach the disk with it.
  await store.write(b.put(META_FIGURES, store.figuresAfter(0, 0, 0)), true);
  store.keyRanges = d.kept;
  return d.retired;
}
