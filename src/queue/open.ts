// Opening the queue: the folder, the LevelDB handle and its error mapping, then recovery of the
// figures, the head index and the key ranges (key-ranges.ts) from what is stored. The next seq is written in the same batch as
// every record, so seq continues across restarts even once every record was deleted.

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { EdgegwError, Exit } from '../errors.js';
import type { HeadEntry } from './head-index.js';
import { HEAD_CAP, type Db, type QueueStore } from './store.js';
import {
  damagedError,
  folderState,
  missingEssentials,
  foreignFolderError,
  inUseError,
  isLocked,
  privateCopy,
} from './db-folder.js';
import { settleKeys } from './key-ranges.js';
import {
  KIND_QUARANTINE,
  KIND_RECORD,
  KIND_SENSOR_ID,
  META_FIGURES,
  META_NEXT_SEQ,
  META_QUARANTINED,
  META_SENSOR_ID_NEXT,
  META_SALTS,
  QUARANTINE_END,
  RECORD_END,
  SENSOR_ID_END,
  causeText,
  figuresValue,
  queueKey,
  readFigures,
  readNumber,
  seqOfKey,
  toRecord,
  type StoredFigures,
} from './keys.js';
import { readSeqMark } from './seq-mark.js';
import { TABLE_FILE_SIZE } from './disk.js';
import { readSaltFile, writeSaltFile } from './salt-file.js';
import { decodeSalts, encodeSalts, mergeSalts } from '../seal/nonce-salts.js';
import { entryKeyId } from '../seal/sealer.js';
import { loadNotices } from './notice-store.js';
import { recoverReservation } from './write-behind.js';

/**
 * Opens the database and recovers the store's figures and key ranges from it. Only an absent or
 * empty dataDir makes a new queue; an existing one that does not open is reported as damaged,
 * never re-created (db-folder.ts). A read-only queue opens a private copy.
 */
export async function openQueue(store: QueueStore): Promise<void> {
  const { dir } = store.opts;
  const state = await folderState(dir);
  if (state === 'foreign') throw foreignFolderError(dir);
  const exists = state === 'leveldb';
  if (exists) {
    const missing = await missingEssentials(dir);
    if (missing !== null) throw damagedError(dir, missing);
  }
  let location = dir;
  if (store.opts.readOnly === true) {
    if (exists && (await isLocked(dir))) throw inUseError(dir);
    // Nothing there yet: an empty queue, without creating dataDir.
    location = exists ? await privateCopy(dir) : await mkdtemp(join(tmpdir(), 'edgegw-queue-copy-'));
    store.copyDir = location;
  } else if (!exists) {
    await makeFolder(dir);
  }
  const db = new Level<Uint8Array, Uint8Array>(location, {
    keyEncoding: 'view',
    valueEncoding: 'view',
    // Sealed values are ciphertext: Snappy would only spend CPU finding nothing to compress.
    compression: false,
    // Never over an existing queue: a damaged one would look new and lose its tables.
    createIfMissing: !exists,
    // A log (and memtable) sized from maxBytes and the filesystem (disk.ts), set before each open.
    writeBufferSize: store.writeBufferSize,
    maxFileSize: TABLE_FILE_SIZE,
  });
  try {
    await db.open();
  } catch (err) {
    await removeCopy(store);
    const cause = (err as { cause?: { code?: unknown } }).cause;
    if (cause?.code === 'LEVEL_LOCKED') throw inUseError(dir, err);
    if (exists) throw damagedError(dir, causeText(err), err);
    throw new EdgegwError(
      'EDGEGW_E_QUEUE_OPEN',
      `cannot open the queue at ${dir}: ${causeText(err)}`,
      Exit.UNAVAILABLE,
      {
        cause: err,
      },
    );
  }
  try {
    await recover(db, store);
    // After a failed write the queue reopens with records write-behind still holds: their key stays.
    const held = (from: number, end: number): boolean =>
      [...store.held.values()].some((h) => h.rec.seq >= from && h.rec.seq < end);
    await loadSalts(db, store);
    const salts = store.ids.salts;
    store.keyRanges = await settleKeys(db, dir, store.s, store.opts.keys, store.sync, held, (seq) =>
      salts.of(seq),
    );
    if (store.opts.keys !== undefined && store.opts.readOnly !== true) await pruneSensorIds(db, store);
    // Only once the keys are settled: a start they refuse changes nothing.
    if (store.opts.readOnly !== true && !salts.begun) await beginSaltEpoch(db, store);
  } catch (err) {
    await db.close();
    await removeCopy(store);
    // A table that cannot be read (a checksum mismatch, a file gone since the open) is damage too.
    throw err instanceof EdgegwError ? err : damagedError(dir, causeText(err), err);
  }
  store.db = db;
}

/** Loads the nonce salts (seal/nonce-salts.ts) from the meta and the file beside the database. */
async function loadSalts(db: Db, store: QueueStore): Promise<void> {
  const inMeta = decodeSalts(await db.get(META_SALTS)) ?? [];
  const inFile = (await readSaltFile(store.opts.dir).catch(() => null)) ?? [];
  store.ids.salts.load(mergeSalts(inMeta, inFile));
}

/**
 * A process's first writable open begins its salt epoch: stored in the meta and the file, synced,
 * before anything is sealed with it. If either write fails, this process seals in format 3 (a
 * stored nonce).
 */
async function beginSaltEpoch(db: Db, store: QueueStore): Promise<void> {
  const { dir } = store.opts;
  const salts = store.ids.salts;
  const quarantined = await db
    .keys({ gte: queueKey(KIND_QUARANTINE, 0), lt: QUARANTINE_END, limit: 1 })
    .all();
  const nextSeq = store.s.nextSeq;
  const lowest = Math.min(
    nextSeq,
    store.s.firstSeq ?? Infinity,
    quarantined[0] === undefined ? Infinity : seqOfKey(quarantined[0]),
  );
  const epochs = salts.begin(nextSeq, lowest);
  if (epochs === null) {
    store.log.warn(
      { epochs: salts.all().length },
      'nonce salt not begun: as many starts as it keeps still have records queued; ' +
        'records are sealed with stored nonces until they drain',
    );
    return;
  }
  try {
    await db.put(META_SALTS, encodeSalts(epochs), { sync: true });
    await writeSaltFile(dir, epochs);
  } catch (err) {
    store.log.warn(
      { code: 'EDGEGW_E_QUEUE_WRITE', err: causeText(err) },
      'nonce salt not written: records are sealed with stored nonces until the next start',
    );
    return;
  }
  salts.sealFrom(epochs);
}

/**
 * Deletes the dictionary entries of keys no stored record was sealed with (after a rotation, once
 * the old key's records are gone): no record can use them, and their key may be gone too. A
 * malformed entry is kept: it is damage, which verify reports.
 */
async function pruneSensorIds(db: Db, store: QueueStore): Promise<void> {
  const live = new Set(store.keyRanges.map((r) => r.id));
  const unused = store.ids
    .all()
    .filter(([, e]) => {
      const id = entryKeyId(e);
      return id !== null && !live.has(id);
    })
    .map(([i]) => i);
  if (unused.length === 0) return;
  const b = db.batch();
  for (const i of unused) b.del(queueKey(KIND_SENSOR_ID, i));
  await b.write({ sync: store.sync });
  store.ids.forget(unused);
}

async function makeFolder(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    const why = (err as { code?: unknown }).code;
    throw new EdgegwError(
      'EDGEGW_E_QUEUE_OPEN',
      `cannot create the queue folder ${dir} (${String(why)}): check gateway.dataDir and who may write there`,
      Exit.CANTCREAT,
      { cause: err },
    );
  }
}

/** Removes the private copy of a read-only queue, if any. */
export async function removeCopy(store: QueueStore): Promise<void> {
  if (store.copyDir === null) return;
  await rm(store.copyDir, { recursive: true, force: true });
  store.copyDir = null;
}

/**
 * Figures from META_FIGURES and the head from the first HEAD_CAP records: no full scan, so a
 * restart with a long backlog does not page the whole database in (DESIGN.md §7). A queue
 * without the figures (written before they were kept), or whose figures disagree with what the
 * head read shows, is scanned once and the figures are written.
 */
async function recover(db: Db, store: QueueStore): Promise<void> {
  const s = store.s;
  const head = await db.iterator({ gte: queueKey(KIND_RECORD, 0), lt: RECORD_END, limit: HEAD_CAP }).all();
  const loaded = head.map(([k, v]) => {
    const rec = toRecord(seqOfKey(k), v);
    return { seq: rec.seq, count: rec.count, t0: rec.t0, size: k.length + v.length };
  });
  const last = await db
    .keys({ gte: queueKey(KIND_RECORD, 0), lt: RECORD_END, reverse: true, limit: 1 })
    .all();
  const lastSeq = last[0] === undefined ? 0 : seqOfKey(last[0]);
  let f = readFigures(await db.get(META_FIGURES));
  if (f === null || !agrees(f, loaded)) {
    f = await scanFigures(db);
    await db.put(META_FIGURES, figuresValue(f), { sync: store.sync });
  }
  s.records = f.records;
  s.readings = f.readings;
  store.quarantineBytes = f.quarantineBytes;
  s.bytes = f.recordBytes + f.quarantineBytes;
  s.quarantined = readNumber(await db.get(META_QUARANTINED));
  const lastNotice = await loadNotices(db, store.notices);
  const ids = await db.iterator({ gte: queueKey(KIND_SENSOR_ID, 0), lt: SENSOR_ID_END }).all();
  store.ids.load(
    ids.map(([k, v]) => [seqOfKey(k), v] as const),
    readNumber(await db.get(META_SENSOR_ID_NEXT)),
  );
  s.nextSeq = Math.max(readNumber(await db.get(META_NEXT_SEQ)), lastSeq + 1, lastNotice + 1, 1);
  // Write-behind's reservation (write-behind.ts): a start continues above what a crash may have
  // handed out unwritten, and the stream explains what it cannot account for. A reopen after a
  // failed write keeps what this process knows (the held records) instead.
  const first = store.reservedOnDisk === -1;
  const r = await recoverReservation(db, s.nextSeq, store.notices.pendingGaps);
  s.nextSeq = r.nextSeq;
  store.reserved = r.reserved;
  store.reservedOnDisk = r.reserved;
  store.settledOnDisk = r.settled;
  if (store.opts.readOnly !== true && first) {
    for (const gap of r.lost) store.notices.add(gap);
    if (r.lost.length > 0) {
      store.log.warn(
        { seqs: r.lost.map((g) => `${g.from}-${g.to}`).slice(0, 8), ranges: r.lost.length },
        'seqs held in memory when the process ended are explained as skipped',
      );
    }
  }
  // The mark is checked, never trusted over the database: a queue from before marks has none.
  if (store.opts.readOnly !== true) store.seqCeiling = await readSeqMark(store.opts.dir);
  const covered = loaded.length < HEAD_CAP ? s.nextSeq - 1 : loaded[loaded.length - 1]!.seq;
  store.head.refill(loaded, covered);
  store.resetRecent(s.nextSeq);
  store.refreshHeadFigures();
}

/** Whether stored figures can be right given the first HEAD_CAP records (all of them if fewer). */
function agrees(f: StoredFigures, head: readonly Omit<HeadEntry, 'live'>[]): boolean {
  if (head.length === HEAD_CAP) return f.records >= HEAD_CAP;
  const readings = head.reduce((sum, e) => sum + e.count, 0);
  const bytes = head.reduce((sum, e) => sum + e.size, 0);
  return f.records === head.length && f.readings === readings && f.recordBytes === bytes;
}

/** The stored figures counted from every record and quarantined record (a full scan). */
async function scanFigures(db: Db): Promise<StoredFigures> {
  const f: StoredFigures = { records: 0, readings: 0, recordBytes: 0, quarantineBytes: 0 };
  for await (const [k, v] of db.iterator({ gte: queueKey(KIND_RECORD, 0), lt: RECORD_END })) {
    f.records++;
    f.readings += toRecord(seqOfKey(k), v).count;
    f.recordBytes += k.length + v.length;
  }
  for await (const [k, v] of db.iterator({ gte: queueKey(KIND_QUARANTINE, 0), lt: QUARANTINE_END })) {
    f.quarantineBytes += k.length + v.length;
  }
  return f;
}
