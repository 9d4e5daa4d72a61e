// `edgegw queue repair` (DESIGN.md §5): explicit recovery of a damaged queue, keeping every record
// that authenticates. In order: keep a copy of the damaged files next to dataDir; open the queue,
// and where LevelDB cannot open or read it, run LevelDB's own repair (it rebuilds the MANIFEST
// and CURRENT from the tables and logs that remain); authenticate every stored record with the
// keys held; move the ones that fail to the quarantine; and set the next seq past every seq seen,
// so no seq is ever reused. Nothing is deleted but records that fail authentication, which move.
// The sensor-id dictionary is checked entry by entry and reported: a damaged entry is left as it
// is (re-creating it would need the plaintext id, and would hide the damage); the records that use
// it authenticate, are kept, and are quarantined when the uplink cannot open them.

import { constants } from 'node:fs';
import { copyFile, mkdtemp, readdir } from 'node:fs/promises';
import { Level } from 'level';
import { EdgegwError, Exit } from '../errors.js';
import { folderState, foreignFolderError, inUseError, isLocked } from './db-folder.js';
import { META_KEYS, encodeRanges, type KeyRange, type QueueKeys } from './key-ranges.js';
import {
  KIND_NOTICE,
  KIND_QUARANTINE,
  KIND_RECORD,
  KIND_SENSOR_ID,
  META_FIGURES,
  META_NEXT_SEQ,
  META_PENDING_GAPS,
  META_QUARANTINED,
  META_SENSOR_ID_NEXT,
  META_RESERVED,
  META_SALTS,
  QUARANTINE_END,
  NOTICE_END,
  RECORD_END,
  SENSOR_ID_END,
  causeText,
  numberValue,
  queueKey,
  readNumber,
  seqOfKey,
  toRecord,
} from './keys.js';
import type { Db } from './store.js';
import { parseSealedHeader } from '../seal/sealer.js';
import type { GapNotice } from '../types.js';
import { coalesce, gapsValue, readGaps } from './notices.js';
import { readSeqMark } from './seq-mark.js';
import { readSaltFile } from './salt-file.js';
import { NonceSalts, decodeSalts, encodeSalts, mergeSalts, type SaltEpoch } from '../seal/nonce-salts.js';

export interface RepairReport {
  /** Where the files were copied before anything was changed. */
  backup: string;
  /** Whether LevelDB's repair had to run (the database did not open or read). */
  rebuilt: boolean;
  /** LevelDB's reason, when it did. */
  damage: string | null;
  kept: number;
  keptReadings: number;
  firstSeq: number | null;
  lastSeq: number | null;
  /** Seqs that failed authentication, now in the quarantine. */
  quarantined: number[];
  nextSeq: number;
  keys: KeyRange[];
  /** Seqs the next start explains as skipped (never used, or lost with the damage), or null. */
  skipped: { from: number; to: number } | null;
  /** Entries of the sensor-id dictionary, and the indices of those that fail authentication. */
  sensorIds: number;
  damagedSensorIds: number[];
}

const WRITE_CHUNK = 1000;

/** LevelDB's RepairDB: `level` resolves to classic-level on Node, whose static repair its typings omit. */
async function levelRepair(dir: string): Promise<void> {
  const repair = (Level as unknown as { repair?: (location: string) => Promise<void> }).repair;
  if (repair === undefined) throw new Error('this LevelDB binding has no repair');
  await repair.call(Level, dir);
}

export async function repairQueue(dir: string, keys: QueueKeys, now = new Date()): Promise<RepairReport> {
  const state = await folderState(dir);
  if (state === 'foreign') throw foreignFolderError(dir);
  if (state !== 'leveldb') {
    throw new EdgegwError(
      'EDGEGW_E_QUEUE_OPEN',
      `there is no queue at ${dir}: nothing to repair`,
      Exit.FAILURE,
    );
  }
  if (await isLocked(dir)) throw inUseError(dir);
  const backup = await keepCopy(dir, now);

  let rebuilt = false;
  let damage: string | null = null;
  const first = await openInPlace(dir);
  let db = 'db' in first ? first.db : null;
  let scan: Scan | null = null;
  if (db !== null) {
    try {
      scan = await scanRecords(db, keys, dir);
    } catch (err) {
      damage = causeText(err);
      await db.close();
      db = null;
    }
  } else if ('error' in first) {
    damage = first.error;
  }
  if (db === null || scan === null) {
    try {
      await levelRepair(dir);
    } catch (err) {
      throw new EdgegwError(
        'EDGEGW_E_QUEUE_DAMAGED',
        `LevelDB cannot repair the queue at ${dir} (${causeText(err)}); the damaged files are kept in ${backup}`,
        Exit.FAILURE,
        { cause: err },
      );
    }
    rebuilt = true;
    const again = await openInPlace(dir);
    if ('error' in again) {
      throw new EdgegwError(
        'EDGEGW_E_QUEUE_DAMAGED',
        `the queue at ${dir} does not open even after LevelDB's repair (${again.error}); the damaged files are kept in ${backup}`,
        Exit.FAILURE,
      );
    }
    db = again.db;
    try {
      scan = await scanRecords(db, keys, dir);
    } catch (err) {
      await db.close();
      throw new EdgegwError(
        'EDGEGW_E_QUEUE_DAMAGED',
        `the queue at ${dir} cannot be read even after LevelDB's repair (${causeText(err)}); the damaged files are kept in ${backup}`,
        Exit.FAILURE,
        { cause: err },
      );
    }
  }
  const s = scan;
  try {
    await rewrite(db, s);
  } finally {
    await db.close();
  }
  return {
    backup,
    rebuilt,
    damage,
    kept: s.authentic.length,
    keptReadings: s.keptReadings,
    firstSeq: s.authentic[0]?.seq ?? null,
    lastSeq: s.authentic.at(-1)?.seq ?? null,
    quarantined: s.failed.map((f) => f.seq),
    nextSeq: s.nextSeq,
    keys: s.ranges,
    skipped: s.skipped === null ? null : { from: s.skipped.from, to: s.skipped.to },
    sensorIds: s.sensorIds,
    damagedSensorIds: s.damagedSensorIds,
  };
}

/** Copies every file of `dir` into `<dir>.damaged-<time>-<random>` (a new folder, mode 0700). */
async function keepCopy(dir: string, now: Date): Promise<string> {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  const prefix = `${dir.replace(/\/+$/, '')}.damaged-${stamp}-`;
  let backup = `${prefix}XXXXXX`;
  try {
    backup = await mkdtemp(prefix);
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.isFile()) await copyFile(`${dir}/${e.name}`, `${backup}/${e.name}`, constants.COPYFILE_EXCL);
    }
  } catch (err) {
    throw new EdgegwError(
      'EDGEGW_E_QUEUE_OPEN',
      `cannot keep a copy of the queue in ${backup} (${String((err as { code?: unknown }).code)}); ` +
        'nothing was changed. Free some room there, then repair again',
      Exit.FAILURE,
      { cause: err },
    );
  }
  return backup;
}

/** The queue opened in place (never created), or LevelDB's reason why it does not open. */
async function openInPlace(dir: string): Promise<{ db: Db } | { error: string }> {
  const db = new Level<Uint8Array, Uint8Array>(dir, {
    keyEncoding: 'view',
    valueEncoding: 'view',
    compression: false,
    createIfMissing: false,
  });
  try {
    await db.open();
    return { db };
  } catch (err) {
    const cause = (err as { cause?: { code?: unknown } }).cause;
    if (cause?.code === 'LEVEL_LOCKED') throw inUseError(dir, err);
    return { error: causeText(err) };
  }
}

interface Scan {
  authentic: { seq: number; id: string }[];
  failed: { seq: number; value: Uint8Array }[];
  keptReadings: number;
  nextSeq: number;
  ranges: KeyRange[];
  skipped: GapNotice | null;
  sensorIds: number;
  damagedSensorIds: number[];
  nextSensorId: number;
  /** The nonce salts of compact records, from the meta and the file beside it (salt-file.ts). */
  salts: SaltEpoch[];
}

async function scanRecords(db: Db, keys: QueueKeys, dir: string): Promise<Scan> {
  const salts = mergeSalts(
    decodeSalts(await db.get(META_SALTS)) ?? [],
    (await readSaltFile(dir).catch(() => null)) ?? [],
  );
  const lookup = new NonceSalts();
  lookup.load(salts);
  const saltOf = (seq: number): Uint8Array | undefined => lookup.of(seq);
  const authentic: Scan['authentic'] = [];
  const failed: Scan['failed'] = [];
  let keptReadings = 0;
  let highest = 0;
  // Past every dictionary index a kept record uses: an entry lost with the damage must leave its
  // records unopenable (quarantined), never let a new sensor take its index and their readings.
  let nextSensorId = 0;
  for await (const [k, v] of db.iterator({ gte: queueKey(KIND_RECORD, 0), lt: RECORD_END })) {
    const seq = seqOfKey(k);
    highest = Math.max(highest, seq);
    const rec = toRecord(seq, v);
    // Trial decryption: the key ranges may be lost with the damage, and a record is kept only if
    // some held key authenticates it.
    const id = keys.identify(rec, saltOf);
    if (id === null) failed.push({ seq, value: v });
    else {
      authentic.push({ seq, id });
      keptReadings += rec.count;
      for (const i of keys.indicesOf?.(rec, id, saltOf) ?? []) nextSensorId = Math.max(nextSensorId, i + 1);
    }
  }
  for await (const k of db.keys({ gte: queueKey(KIND_QUARANTINE, 0), lt: QUARANTINE_END })) {
    highest = Math.max(highest, seqOfKey(k));
  }
  for await (const k of db.keys({ gte: queueKey(KIND_NOTICE, 0), lt: NOTICE_END })) {
    highest = Math.max(highest, seqOfKey(k));
  }
  let sensorIds = 0;
  const damagedSensorIds: number[] = [];
  for await (const [k, v] of db.iterator({ gte: queueKey(KIND_SENSOR_ID, 0), lt: SENSOR_ID_END })) {
    sensorIds++;
    nextSensorId = Math.max(nextSensorId, seqOfKey(k) + 1);
    try {
      keys.openId?.(seqOfKey(k), v);
    } catch {
      damagedSensorIds.push(seqOfKey(k));
    }
  }
  nextSensorId = Math.max(nextSensorId, readNumber(await db.get(META_SENSOR_ID_NEXT)));
  const stored = readNumber(await db.get(META_NEXT_SEQ));
  const ranges: KeyRange[] = [];
  for (const a of authentic) if (ranges.at(-1)?.id !== a.id) ranges.push({ id: a.id, fromSeq: a.seq });
  // The mark outlives damage to the tables: seqs below it may have been used (and delivered).
  const mark = await readSeqMark(dir);
  const known = Math.max(stored, highest + 1, 1);
  const nextSeq = Math.max(known, mark);
  // Seqs from what the database still knows up to the mark: never used, or used and lost with
  // the damage. The stream explains them as skipped (readings unknown), sealed at the next start.
  const skipped: GapNotice | null =
    nextSeq > known ? { from: known, to: nextSeq - 1, why: 'skipped', readings: null } : null;
  return {
    authentic,
    failed,
    keptReadings,
    nextSeq,
    ranges,
    skipped,
    sensorIds,
    damagedSensorIds,
    nextSensorId,
    salts,
  };
}

async function rewrite(db: Db, s: Scan): Promise<void> {
  for (let i = 0; i < s.failed.length; i += WRITE_CHUNK) {
    const b = db.batch();
    for (const f of s.failed.slice(i, i + WRITE_CHUNK)) {
      b.del(queueKey(KIND_RECORD, f.seq)).put(queueKey(KIND_QUARANTINE, f.seq), f.value);
    }
    await b.write({ sync: true });
  }
  const quarantined = readNumber(await db.get(META_QUARANTINED));
  const b = db
    .batch()
    .put(META_NEXT_SEQ, numberValue(s.nextSeq))
    .put(META_QUARANTINED, numberValue(quarantined + s.failed.length))
    .put(META_SENSOR_ID_NEXT, numberValue(s.nextSensorId))
    // The skipped gap covers everything above what is stored up to the mark, which is above any
    // write-behind reservation: the next start has nothing more to explain (write-behind.ts).
    .put(META_RESERVED, numberValue(0))
    // The next open counts the figures again from what is stored (open.ts).
    .del(META_FIGURES);
  // What the stream will never carry, explained by notices the next start seals: the records
  // that fail authentication (their count from the plain header, null if it does not parse), and
  // the skipped seqs.
  const gaps: GapNotice[] = s.failed.map((f) => ({
    from: f.seq,
    to: f.seq,
    why: 'quarantined',
    readings: headerCount(f.seq, f.value),
  }));
  if (s.skipped !== null) gaps.push(s.skipped);
  if (gaps.length > 0) {
    b.put(META_PENDING_GAPS, gapsValue(coalesce(readGaps(await db.get(META_PENDING_GAPS)), gaps)));
  }
  if (s.ranges.length > 0) b.put(META_KEYS, encodeRanges(s.ranges));
  else b.del(META_KEYS);
  // Every salt known: the quarantined records keep theirs, should a key that opens them turn up.
  if (s.salts.length > 0) b.put(META_SALTS, encodeSalts(s.salts));
  await b.write({ sync: true });
}

function headerCount(seq: number, value: Uint8Array): number | null {
  try {
    return parseSealedHeader(seq, value).count;
  } catch {
    return null;
  }
}
