// Records that failed authentication: moved out of the record range under their own key kind,
// kept for forensics within min(maxBytes / 16, 4 MiB) (oldest evicted), and counted.

import { audit } from '../audit.js';
import type { SealedRecord } from '../types.js';
import { DamagedIdError, TamperedRecordError, entryKeyId, parseSealedHeader } from '../seal/sealer.js';
import type { IdCrypto } from '../seal/sensor-ids.js';
import type { Db, QueueStore } from './store.js';
import {
  KIND_NOTICE,
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
  if (store.notices.has(seq)) return quarantineNotice(store, db, seq, reason);
  const key = queueKey(KIND_RECORD, seq);
  const value = await db.get(key);
  const e = await store.entryOf(db, seq);
  if (value === undefined || e === undefined) return;
  // The reading count is the record's plain header, bound as associated data: known without
  // the key, and what the totals count. A header that does not even parse gives no count.
  const readings = headerParses(seq, value) ? e.count : null;
  const gaps = [{ from: seq, to: seq, why: 'quarantined' as const, readings }];
  const b = db.batch().del(key);
  // Too big for the quarantine budget: counted and logged, but not kept.
  const keep = e.size <= quarantineCap(store);
  const evict = keep ? await quarantineToEvict(store, db, e.size) : [];
  for (const old of evict) b.del(old.key);
  if (keep) b.put(queueKey(KIND_QUARANTINE, seq), value);
  const kept = (keep ? e.size : 0) - evict.reduce((sum, old) => sum + old.size, 0);
  b.put(META_FIGURES, store.figuresAfter(-1, -e.count, -e.size, kept));
  await store.write(
    b.put(META_QUARANTINED, numberValue(store.s.quarantined + 1)),
    store.sync,
    {
      quarantinedRecords: 1,
      quarantinedReadings: e.count,
    },
    { gaps },
  );
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

function headerParses(seq: number, value: Uint8Array): boolean {
  try {
    parseSealedHeader(seq, value);
    return true;
  } catch {
    return false;
  }
}

/**
 * A notice that failed authentication: moved to the quarantine like a record (within its cap),
 * counted in the notice totals, and its own seq explained by a new quarantined gap (0 readings).
 */
async function quarantineNotice(store: QueueStore, db: Db, seq: number, reason: string): Promise<void> {
  const rec = store.notices.quarantined(seq);
  if (rec === undefined) return;
  const key = queueKey(KIND_QUARANTINE, seq);
  const size = key.length + rec.bytes.length;
  const keep = size <= quarantineCap(store);
  const evict = keep ? await quarantineToEvict(store, db, size) : [];
  const b = db.batch().del(queueKey(KIND_NOTICE, seq));
  for (const old of evict) b.del(old.key);
  if (keep) b.put(key, rec.bytes);
  const kept = (keep ? size : 0) - evict.reduce((sum, old) => sum + old.size, 0);
  b.put(META_FIGURES, store.figuresAfter(0, 0, 0, kept));
  await store.write(b, store.sync);
  store.quarantineBytes += kept;
  store.s.bytes += kept;
  audit(
    store.log,
    'quarantine',
    { code: 'EDGEGW_E_QUEUE_TAMPERED', seq, reason, notice: true },
    'queue notice record quarantined',
    'warn',
  );
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

/**
 * Authenticates every dictionary entry with the key it names; for `edgegw queue verify`. The
 * entries of a key no stored record was sealed with are not needed (deleted once drained, or at the next start).
 */
export function verifySensorIds(store: QueueStore, crypto: IdCrypto): { entries: number; damaged: number[] } {
  // Without the queue's keys (a queue opened without them) no range says which are needed.
  const live = store.opts.keys === undefined ? null : new Set(store.keyRanges.map((r) => r.id));
  const all = store.ids.all().filter(([, e]) => {
    const id = entryKeyId(e);
    return id === null || live === null || live.has(id);
  });
  const damaged: number[] = [];
  for (const [i, e] of all) {
    try {
      crypto.openId(i, e);
    } catch (err) {
      if (!(err instanceof DamagedIdError)) throw err;
      damaged.push(i);
    }
  }
  return { entries: all.length, damaged };
}
