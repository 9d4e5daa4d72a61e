// Records that failed authentication: moved out of the record range under their own key kind,
// kept for forensics within min(maxBytes / 16, 4 MiB) (oldest evicted), and counted.

import { audit } from '../audit.js';
import type { SealedRecord } from '../types.js';
import { TamperedRecordError } from '../seal/sealer.js';
import type { Db, QueueStore } from './store.js';
import {
  KIND_QUARANTINE,
  KIND_RECORD,
  META_FIGURES,
  META_QUARANTINED,
  QUARANTINE_END,
  RECORD_END,
  numberValue,
  queueKey,
  seqOfKey,
  toRecord,
} from './keys.js';

function quarantineCap(store: QueueStore): number {
  return Math.min(Math.floor(store.opts.maxBytes / 16), 4 * 1024 * 1024);
}

/** Moves a record that failed authentication out of the record range and counts it. */
export async function quarantineRecord(store: QueueStore, seq: number, reason: string): Promise<void> {
  const db = store.open();
  const key = queueKey(KIND_RECORD, seq);
  const value = await db.get(key);
  const e = await store.entryOf(db, seq);
  if (value === undefined || e === undefined) return;
  const b = db.batch().del(key);
  // Too big for the quarantine budget: counted and logged, but not kept.
  const keep = e.size <= quarantineCap(store);
  const evict = keep ? await quarantineToEvict(store, db, e.size) : [];
  for (const old of evict) b.del(old.key);
  if (keep) b.put(queueKey(KIND_QUARANTINE, seq), value);
  const kept = (keep ? e.size : 0) - evict.reduce((sum, old) => sum + old.size, 0);
  b.put(META_FIGURES, store.figuresAfter(-1, -e.count, -e.size, kept));
  await store.write(b.put(META_QUARANTINED, numberValue(store.s.quarantined + 1)), store.sync, {
    quarantinedRecords: 1,
    quarantinedReadings: e.count,
  });
  store.forget(e);
  store.quarantineBytes += kept;
  store.s.bytes += kept;
  store.s.quarantined++;
  audit(
    store.log,
    'quarantine',
    { code: 'EDGEGW_E_QUEUE_TAMPERED', seq, reason },
    'queue record quarantined',
    'warn',
  );
  await store.afterRemoval(db, 1);
}

async function quarantineToEvict(
  store: QueueStore,
  db: Db,
  adding: number,
): Promise<{ key: Uint8Array; size: number }[]> {
  let over = store.quarantineBytes + adding - quarantineCap(store);
  const out: { key: Uint8Array; size: number }[] = [];
  if (over <= 0) return out;
  for await (const [k, v] of db.iterator({ gte: queueKey(KIND_QUARANTINE, 0), lt: QUARANTINE_END })) {
    out.push({ key: k, size: k.length + v.length });
    over -= k.length + v.length;
    if (over <= 0) break;
  }
  return out;
}

/** Authenticates every record with `open` (does not quarantine); for `edgegw queue verify`. */
export async function verifyRecords(
  store: QueueStore,
  open: (rec: SealedRecord) => unknown,
): Promise<{ ok: number; tampered: number[] }> {
  const db = store.open();
  let ok = 0;
  const tampered: number[] = [];
  for await (const [k, v] of db.iterator({ gte: queueKey(KIND_RECORD, 0), lt: RECORD_END })) {
    if (store.tombstones.has(seqOfKey(k))) continue;
    const rec = toRecord(seqOfKey(k), v);
    try {
      open(rec);
      ok++;
    } catch (err) {
      if (!(err instanceof TamperedRecordError)) throw err;
      tampered.push(rec.seq);
    }
  }
  return { ok, tampered };
}
