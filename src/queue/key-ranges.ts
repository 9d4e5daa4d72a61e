// Which key sealed which records. The queue stores, in its meta, the ranges {keyId, fromSeq}: a
// record (or notice record) with seq s was sealed by the range with the largest fromSeq ≤ s. A
// start with a new current key adds a range at nextSeq, and so does a live switch (a
// rotate-queue-key job: SealedQueue.switchKey) before anything is sealed with the new key. A range
// whose records and notices are all gone is forgotten: at the next start, or at once when the
// oldest ranges drain (drainedRanges). So opening a record needs no trial decryption, and a start
// whose keys cannot open some stored record is refused before anything is touched (issue 6,
// break 3).
//
// Value of META_KEYS: per range, the 16-byte key id then fromSeq as a float64.

import { EdgegwError, Exit } from '../errors.js';
import type { SealedRecord } from '../types.js';
import type { SaltLookup } from '../seal/sealer.js';
import { KIND_NOTICE, KIND_RECORD, RECORD_END, queueKey, seqOfKey, toRecord } from './keys.js';
import type { Db } from './store.js';

import { META_KEYS } from './keys.js';
export { META_KEYS };
const ID_BYTES = 16;
const ENTRY_BYTES = ID_BYTES + 8;
/** Records tried, oldest first, to learn the key of a queue written before key ids were kept. */
const LEGACY_PROBES = 16;

export interface KeyRange {
  readonly id: string;
  readonly fromSeq: number;
}

/** The keys a queue is opened with (from the seal stage's Keyring); none for `queue inspect`. */
export interface QueueKeys {
  /** The key id new records are sealed with. */
  readonly current: string;
  /** Every key id held, current first, with the file it came from (for messages). */
  readonly files: ReadonlyMap<string, string>;
  /**
   * Trial decryption: the held key that opens a record, or null (only for a legacy queue, and
   * repair). `salts` gives compact records their nonce salt (nonce-salts.ts).
   */
  identify(rec: SealedRecord, salts?: SaltLookup): string | null;
  /** Opens a sensor-id dictionary entry with the key it names (throws when damaged); for repair. */
  openId?(index: number, entry: Uint8Array): string;
  /** The dictionary indices a record sealed by `keyId` refers to (null if it does not open); for repair. */
  indicesOf?(rec: SealedRecord, keyId: string, salts?: SaltLookup): Set<number> | null;
}

export function encodeRanges(ranges: readonly KeyRange[]): Uint8Array {
  const b = new Uint8Array(ranges.length * ENTRY_BYTES);
  const v = new DataView(b.buffer);
  ranges.forEach((r, i) => {
    b.set(Buffer.from(r.id, 'hex'), i * ENTRY_BYTES);
    v.setFloat64(i * ENTRY_BYTES + ID_BYTES, r.fromSeq);
  });
  return b;
}

/** The stored ranges, or null when absent or malformed. */
export function decodeRanges(b: Uint8Array | undefined): KeyRange[] | null {
  if (b === undefined || b.length === 0 || b.length % ENTRY_BYTES !== 0) return null;
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  const out: KeyRange[] = [];
  for (let at = 0; at < b.length; at += ENTRY_BYTES) {
    const fromSeq = v.getFloat64(at + ID_BYTES);
    if (!Number.isSafeInteger(fromSeq) || fromSeq < 0) return null;
    out.push({ id: Buffer.from(b.subarray(at, at + ID_BYTES)).toString('hex'), fromSeq });
  }
  return out;
}

/**
 * The oldest ranges whose seqs are all gone (every seq below `lowest`, the lowest seq still
 * stored, held or queued as a notice), or null when there are none: `kept` the ranges left, and
 * `retired` the key ids no kept range names. The newest range is always kept.
 */
export function drainedRanges(
  ranges: readonly KeyRange[],
  lowest: number,
): { kept: KeyRange[]; retired: string[] } | null {
  let n = 0;
  while (n < ranges.length - 1 && ranges[n + 1]!.fromSeq <= lowest) n++;
  if (n === 0) return null;
  const kept = ranges.slice(n);
  const named = new Set(kept.map((r) => r.id));
  const retired = [...new Set(ranges.slice(0, n).map((r) => r.id))].filter((id) => !named.has(id));
  return { kept, retired };
}

/** The key ranges with `id` sealing from `fromSeq` on (an empty newest range is replaced). */
export function withRange(ranges: readonly KeyRange[], id: string, fromSeq: number): KeyRange[] {
  const out = ranges.filter((r, i) => !(i === ranges.length - 1 && r.fromSeq >= fromSeq));
  if (out.at(-1)?.id !== id) out.push({ id, fromSeq });
  return out;
}

/** The id of the key that sealed `seq`, or null when no range covers it. */
export function sealedBy(ranges: readonly KeyRange[], seq: number): string | null {
  for (let i = ranges.length - 1; i >= 0; i--) if (ranges[i]!.fromSeq <= seq) return ranges[i]!.id;
  return null;
}

export function keyError(dir: string, keys: QueueKeys, missing: readonly string[]): EdgegwError {
  const file = keys.files.get(keys.current) ?? '?';
  const which =
    missing.length === 0
      ? 'a key none of the configured key files holds (its records carry no key id; none of the oldest opens)'
      : `key id ${missing.join(', ')}, which neither queue.keyFile nor queue.previousKeyFiles holds ` +
        '(nor queue.rotatedKeysDir: a key a rotate-queue-key job retired is in its retired/ folder, as <key id>.key)';
  return new EdgegwError(
    'EDGEGW_E_QUEUE_KEY',
    `the queue at ${dir} was sealed with ${which}; queue.keyFile ${file} has key id ${keys.current}. ` +
      'Put the key file that wrote the queue back as queue.keyFile, or, after a key rotation, list the old key ' +
      'file in queue.previousKeyFiles. Nothing in the queue was changed',
    Exit.CONFIG,
  );
}

interface Held {
  readonly records: number;
  readonly firstSeq: number | null;
  readonly nextSeq: number;
}

/**
 * The key ranges of an opened queue, settled for a start with `keys`: ranges without records or
 * notices (nor, after a reopen, records `inMemory` still holds) forgotten, every remaining key
 * checked (refused with EDGEGW_E_QUEUE_KEY before anything is written), and a range for the
 * current key added. Without keys (inspect), only read. `salts` opens compact records (a queue
 * without ranges may hold them when the process that wrote it held no key ids).
 */
export async function settleKeys(
  db: Db,
  dir: string,
  held: Held,
  keys: QueueKeys | undefined,
  sync: boolean,
  inMemory: (from: number, end: number) => boolean = () => false,
  salts?: SaltLookup,
): Promise<KeyRange[]> {
  const stored = decodeRanges(await db.get(META_KEYS));
  let ranges = stored ?? [];
  if (stored === null && held.records > 0) {
    if (keys === undefined) return [];
    // Written before key ids were kept: learn the key once from the oldest records.
    const id = await identifyLegacy(db, held.firstSeq ?? 0, keys, salts);
    if (id === null) throw keyError(dir, keys, []);
    ranges = [{ id, fromSeq: 0 }];
  }
  const live: KeyRange[] = [];
  for (const [i, r] of ranges.entries()) {
    const end = ranges[i + 1]?.fromSeq ?? held.nextSeq;
    // A notice may be older than every record (notices.ts): it keeps its key as a record does.
    const used =
      (await hasRecords(db, Math.max(r.fromSeq, held.firstSeq ?? held.nextSeq), end)) ||
      (await hasRecords(db, r.fromSeq, end, KIND_NOTICE)) ||
      inMemory(r.fromSeq, end);
    if (used) live.push(r);
  }
  if (keys === undefined) return live;
  const missing = [...new Set(live.map((r) => r.id).filter((id) => !keys.files.has(id)))];
  if (missing.length > 0) throw keyError(dir, keys, missing);
  if (live.at(-1)?.id !== keys.current) live.push({ id: keys.current, fromSeq: held.nextSeq });
  const value = encodeRanges(live);
  if (stored === null || !Buffer.from(value).equals(encodeRanges(stored))) {
    await db.put(META_KEYS, value, { sync });
  }
  return live;
}

async function hasRecords(db: Db, from: number, end: number, kind = KIND_RECORD): Promise<boolean> {
  if (from >= end) return false;
  const k = await db.keys({ gte: queueKey(kind, from), lt: queueKey(kind, end), limit: 1 }).all();
  return k.length > 0;
}

async function identifyLegacy(
  db: Db,
  firstSeq: number,
  keys: QueueKeys,
  salts: SaltLookup | undefined,
): Promise<string | null> {
  const rows = await db
    .iterator({ gte: queueKey(KIND_RECORD, firstSeq), lt: RECORD_END, limit: LEGACY_PROBES })
    .all();
  for (const [k, v] of rows) {
    const id = keys.identify(toRecord(seqOfKey(k), v), salts);
    if (id !== null) return id;
  }
  return null;
}
