// The durable queue: one LevelDB under dataDir, one sealed record per entry (DESIGN.md §1, §8).
// Key layout in keys.ts. The next seq is written in the same batch as every record, so seq
// continues across restarts even once every record was deleted. Quarantined records are kept for
// forensics under their own key kind, outside the record range.
// `bytes` counts stored key + value bytes of records and quarantined records, and the whenFull
// policy keeps it ≤ maxBytes. Quarantine keeps at most min(maxBytes / 16, 4 MiB), oldest evicted.
//
// Deleted keys stay as tombstones until compaction, so reads seek past the head (never from the
// start of the range), and the acknowledged range is compacted every COMPACT_EVERY deletes.

import { mkdir } from 'node:fs/promises';
import { Level } from 'level';
import type { Logger } from 'pino';
import { systemClock, type Clock, type Lifecycle, type Reading, type SealedRecord } from '../types.js';
import { EdgegwError, Exit } from '../errors.js';
import { TamperedRecordError } from '../seal/sealer.js';
import { HeadIndex, type HeadEntry } from './head-index.js';
import { FullQueueReport } from './full-report.js';
import { RecentRecords } from './recent.js';
import { TOMBSTONE_BATCH, TOMBSTONE_MS, Tombstones } from './tombstones.js';
import {
  KIND_QUARANTINE,
  KIND_RECORD,
  META_FIGURES,
  META_NEXT_SEQ,
  META_QUARANTINED,
  QUARANTINE_END,
  RECORD_END,
  numberValue,
  queueKey,
  readNumber,
  seqOfKey,
  causeText,
  figuresValue,
  readFigures,
  toRecord,
  type StoredFigures,
} from './keys.js';

export interface QueueStats {
  records: number;
  readings: number;
  bytes: number;
  firstSeq: number | null;
  nextSeq: number;
  oldestTs: number | null;
  quarantined: number;
  droppedReadings: number;
  droppedRecords: number;
}

export interface SealedQueueOptions {
  dir: string;
  maxBytes: number;
  whenFull: 'drop-oldest' | 'reject-new';
  durability: 'fsync' | 'os';
  seal: (seq: number, readings: readonly Reading[]) => SealedRecord;
  log: Logger;
  /** For rate-limiting the full-queue warning; defaults to the system clock. */
  clock?: Clock;
}

const HEAD_CAP = 4096;
const COMPACT_EVERY = 10_000;
/** The newest records kept in memory for the uplink's live reads (at most these many, these bytes). */
const RECENT_CAP = 64;
const RECENT_BYTES = 1024 * 1024;

interface Compactable {
  compactRange(start: Uint8Array, end: Uint8Array): Promise<void>;
}

interface PendingDelete {
  seq: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class SealedQueue implements Lifecycle {
  private db: Level<Uint8Array, Uint8Array> | null = null;
  private readonly head = new HeadIndex(HEAD_CAP);
  private readonly listeners = new Set<() => void>();
  private readonly full: FullQueueReport;
  private tail: Promise<void> = Promise.resolve();
  private pendingDeletes: PendingDelete[] = [];
  private compaction: Promise<void> = Promise.resolve();
  private deletesSinceCompact = 0;
  private s: QueueStats = {
    records: 0,
    readings: 0,
    bytes: 0,
    firstSeq: null,
    nextSeq: 1,
    oldestTs: null,
    quarantined: 0,
    droppedReadings: 0,
    droppedRecords: 0,
  };
  private quarantineBytes = 0;
  private recent = new RecentRecords(1, RECENT_CAP, RECENT_BYTES);
  private readonly tombstones = new Tombstones();
  private tombstoneTimer: unknown = null;

  constructor(private readonly opts: SealedQueueOptions) {
    this.full = new FullQueueReport(opts.log, opts.clock ?? systemClock, opts.whenFull);
  }

  private get clock(): Clock {
    return this.opts.clock ?? systemClock;
  }

  private get sync(): boolean {
    return this.opts.durability === 'fsync';
  }

  private get quarantineCap(): number {
    return Math.min(Math.floor(this.opts.maxBytes / 16), 4 * 1024 * 1024);
  }

  async start(): Promise<void> {
    const { dir } = this.opts;
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
    const db = new Level<Uint8Array, Uint8Array>(dir, {
      keyEncoding: 'view',
      valueEncoding: 'view',
      // Sealed values are ciphertext: Snappy would only spend CPU finding nothing to compress.
      compression: false,
    });
    try {
      await db.open();
    } catch (err) {
      const cause = (err as { cause?: { code?: unknown } }).cause;
      if (cause?.code === 'LEVEL_LOCKED') {
        throw new EdgegwError(
          'EDGEGW_E_QUEUE_OPEN',
          `queue at ${dir} is in use — is the daemon running? Stop it or use \`edgegw status\``,
          Exit.UNAVAILABLE,
          { cause: err },
        );
      }
      throw new EdgegwError(
        'EDGEGW_E_QUEUE_OPEN',
        `cannot open the queue at ${dir}: ${causeText(err)}`,
        Exit.UNAVAILABLE,
        { cause: err },
      );
    }
    this.db = db;
    await this.recover(db);
  }

  /**
   * Figures from META_FIGURES and the head from the first HEAD_CAP records: no full scan, so a
   * restart with a long backlog does not page the whole database in (DESIGN.md §7). A queue
   * without the figures (written before they were kept), or whose figures disagree with what the
   * head read shows, is scanned once and the figures are written.
   */
  private async recover(db: Level<Uint8Array, Uint8Array>): Promise<void> {
    const s = this.s;
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
      await db.put(META_FIGURES, figuresValue(f), { sync: this.sync });
    }
    s.records = f.records;
    s.readings = f.readings;
    this.quarantineBytes = f.quarantineBytes;
    s.bytes = f.recordBytes + f.quarantineBytes;
    s.quarantined = readNumber(await db.get(META_QUARANTINED));
    s.nextSeq = Math.max(readNumber(await db.get(META_NEXT_SEQ)), lastSeq + 1, 1);
    const covered = loaded.length < HEAD_CAP ? s.nextSeq - 1 : loaded[loaded.length - 1]!.seq;
    this.head.refill(loaded, covered);
    this.recent = new RecentRecords(s.nextSeq, RECENT_CAP, RECENT_BYTES);
    this.refreshHeadFigures();
  }

  /** The stored figures once a change of these amounts is written (put in that change's batch). */
  private figuresAfter(
    records: number,
    readings: number,
    recordBytes: number,
    quarantineBytes = 0,
  ): Uint8Array {
    const s = this.s;
    return figuresValue({
      records: s.records + records,
      readings: s.readings + readings,
      recordBytes: s.bytes - this.quarantineBytes + recordBytes,
      quarantineBytes: this.quarantineBytes + quarantineBytes,
    });
  }

  async stop(): Promise<void> {
    const db = this.db;
    if (db === null) return;
    await this.tail;
    this.disarmTombstones();
    if (this.tombstones.size > 0) await this.writeTombstones(db);
    await this.compaction;
    this.full.flush(this.s);
    this.db = null;
    await db.close();
  }

  /** Stats from memory, O(1). */
  stats(): QueueStats {
    return { ...this.s };
  }

  /** Offline figures for `edgegw queue inspect`. */
  inspect(): QueueStats {
    return this.stats();
  }

  onAppend(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Seals and commits one record; its seq, or null when the full policy refused it. */
  append(readings: readonly Reading[]): Promise<number | null> {
    return this.serial(() => this.doAppend(readings));
  }

  private async doAppend(readings: readonly Reading[]): Promise<number | null> {
    const db = this.open();
    const s = this.s;
    const seq = s.nextSeq;
    const rec = this.opts.seal(seq, readings);
    const key = queueKey(KIND_RECORD, seq);
    const size = key.length + rec.bytes.length;
    const room = this.opts.maxBytes - this.quarantineBytes;
    if (size > room || (this.opts.whenFull === 'reject-new' && s.bytes + size > this.opts.maxBytes)) {
      this.full.dropped(1, rec.count, s);
      return null;
    }
    if (s.bytes + size > this.opts.maxBytes) await this.dropOldest(db, s.bytes + size - this.opts.maxBytes);

    const b = db
      .batch()
      .put(key, rec.bytes)
      .put(META_NEXT_SEQ, numberValue(seq + 1))
      .put(META_FIGURES, this.figuresAfter(1, rec.count, size));
    await this.write(b, this.sync);
    s.nextSeq = seq + 1;
    s.records++;
    s.readings += rec.count;
    s.bytes += size;
    this.head.appended({ seq, count: rec.count, t0: rec.t0, size });
    // Kept only for a follower (the uplink): without one, holding records would only feed the GC.
    if (this.listeners.size > 0) this.recent.appended(rec);
    else this.recent.skipped(seq);
    this.refreshHeadFigures();
    for (const l of this.listeners) {
      try {
        l();
      } catch (err) {
        // The record is committed whatever a listener does; say so rather than fail the append.
        this.opts.log.error({ err: causeText(err) }, 'queue append listener failed');
      }
    }
    return seq;
  }

  /** Deletes the oldest records until `need` bytes are free (its own batch, before the append). */
  private async dropOldest(db: Level<Uint8Array, Uint8Array>, need: number): Promise<void> {
    const victims: HeadEntry[] = [];
    let freed = 0;
    while (freed < need && this.head.live > 0) {
      for (const e of this.head.oldest()) {
        if (freed >= need) break;
        victims.push(e);
        freed += e.size;
      }
      if (freed >= need) break;
      // The index ran out before enough was freed: drop those, then load the next ones.
      await this.deleteEntries(db, victims.splice(0));
    }
    await this.deleteEntries(db, victims);
  }

  private async deleteEntries(db: Level<Uint8Array, Uint8Array>, victims: HeadEntry[]): Promise<void> {
    if (victims.length === 0) return;
    const b = db.batch();
    let readings = 0;
    let bytes = 0;
    for (const e of victims) {
      b.del(queueKey(KIND_RECORD, e.seq));
      readings += e.count;
      bytes += e.size;
    }
    await b
      .put(META_FIGURES, this.figuresAfter(-victims.length, -readings, -bytes))
      .write({ sync: this.sync });
    for (const e of victims) this.forget(e);
    this.full.dropped(victims.length, readings, this.s);
    await this.afterRemoval(db, victims.length);
  }

  /** Records with seq > afterSeq, oldest first, at most `limit`. */
  async read(afterSeq: number, limit: number): Promise<SealedRecord[]> {
    const db = this.open();
    // Seek past the head: below firstSeq there are only tombstones (or nothing).
    const from = Math.max(afterSeq + 1, this.s.firstSeq ?? this.s.nextSeq);
    if (limit <= 0 || from >= this.s.nextSeq) return [];
    const recent = this.recent.read(from, this.s.nextSeq, limit);
    if (recent !== null) return recent;
    // Deleted records whose tombstones are not written yet are still on disk: read past them.
    const rows = await db
      .iterator({ gte: queueKey(KIND_RECORD, from), lt: RECORD_END, limit: limit + this.tombstones.size })
      .all();
    const out: SealedRecord[] = [];
    for (const [k, v] of rows) {
      const seq = seqOfKey(k);
      if (!this.tombstones.has(seq) && out.length < limit) out.push(toRecord(seq, v));
    }
    return out;
  }

  /**
   * Deletes an acknowledged record. It is gone at once for reads and figures; its tombstone is
   * written with the next batch (see tombstones.ts), so a crash may only bring it back once.
   */
  delete(seq: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pendingDeletes.push({ seq, resolve, reject });
      if (this.pendingDeletes.length === 1) void this.serial(() => this.flushDeletes());
    });
  }

  private async flushDeletes(): Promise<void> {
    const batch = this.pendingDeletes;
    this.pendingDeletes = [];
    try {
      const db = this.open();
      let removed = 0;
      for (const { seq } of batch) {
        const e = await this.entryOf(db, seq);
        if (e === undefined) continue;
        this.forget(e);
        this.tombstones.add(seq);
        removed++;
      }
      if (this.tombstones.size >= TOMBSTONE_BATCH) await this.writeTombstones(db);
      else if (this.tombstones.size > 0) this.armTombstones();
      await this.afterRemoval(db, removed);
      for (const d of batch) d.resolve();
    } catch (err) {
      for (const d of batch) d.reject(err);
    }
  }

  /** Writes the pending tombstones in a batch of their own (not synced: a lost delete is a resend). */
  private async writeTombstones(db: Level<Uint8Array, Uint8Array>): Promise<void> {
    await this.write(db.batch().put(META_FIGURES, this.figuresAfter(0, 0, 0)), false);
  }

  private armTombstones(): void {
    if (this.tombstoneTimer !== null) return;
    this.tombstoneTimer = this.clock.setTimeout(() => {
      this.tombstoneTimer = null;
      void this.serial(async () => {
        if (this.db !== null && this.tombstones.size > 0) await this.writeTombstones(this.db);
      }).catch((err: unknown) => {
        // Still pending: the next batch takes them.
        this.opts.log.warn({ err: causeText(err) }, 'queue delete write failed');
      });
    }, TOMBSTONE_MS);
  }

  private disarmTombstones(): void {
    if (this.tombstoneTimer === null) return;
    this.clock.clearTimeout(this.tombstoneTimer);
    this.tombstoneTimer = null;
  }

  /**
   * Writes a batch that puts META_FIGURES, with every pending tombstone: the figures were taken
   * from memory, where those records are already gone.
   */
  private async write(b: ReturnType<Level<Uint8Array, Uint8Array>['batch']>, sync: boolean): Promise<void> {
    const taken = this.tombstones.take(b);
    try {
      await b.write({ sync });
    } catch (err) {
      this.tombstones.restore(taken);
      throw err;
    }
    this.tombstones.settle(taken);
  }

  /** Moves a record that failed authentication out of the record range and counts it. */
  quarantine(seq: number, reason: string): Promise<void> {
    return this.serial(async () => {
      const db = this.open();
      const key = queueKey(KIND_RECORD, seq);
      const value = await db.get(key);
      const e = await this.entryOf(db, seq);
      if (value === undefined || e === undefined) return;
      const b = db.batch().del(key);
      // Too big for the quarantine budget: counted and logged, but not kept.
      const keep = e.size <= this.quarantineCap;
      const evict = keep ? await this.quarantineToEvict(db, e.size) : [];
      for (const old of evict) b.del(old.key);
      if (keep) b.put(queueKey(KIND_QUARANTINE, seq), value);
      const kept = (keep ? e.size : 0) - evict.reduce((sum, old) => sum + old.size, 0);
      b.put(META_FIGURES, this.figuresAfter(-1, -e.count, -e.size, kept));
      await this.write(b.put(META_QUARANTINED, numberValue(this.s.quarantined + 1)), this.sync);
      this.forget(e);
      this.quarantineBytes += kept;
      this.s.bytes += kept;
      this.s.quarantined++;
      this.opts.log.warn({ code: 'EDGEGW_E_QUEUE_TAMPERED', seq, reason }, 'queue record quarantined');
      await this.afterRemoval(db, 1);
    });
  }

  private async quarantineToEvict(
    db: Level<Uint8Array, Uint8Array>,
    adding: number,
  ): Promise<{ key: Uint8Array; size: number }[]> {
    let over = this.quarantineBytes + adding - this.quarantineCap;
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
  async verify(open: (rec: SealedRecord) => unknown): Promise<{ ok: number; tampered: number[] }> {
    const db = this.open();
    let ok = 0;
    const tampered: number[] = [];
    for await (const [k, v] of db.iterator({ gte: queueKey(KIND_RECORD, 0), lt: RECORD_END })) {
      if (this.tombstones.has(seqOfKey(k))) continue;
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

  /** The entry of a stored record: from the head index, or read from disk beyond it. */
  private async entryOf(db: Level<Uint8Array, Uint8Array>, seq: number): Promise<HeadEntry | undefined> {
    if (seq <= this.head.coveredTo) return this.head.find(seq);
    if (this.tombstones.has(seq)) return undefined;
    const key = queueKey(KIND_RECORD, seq);
    const v = await db.get(key);
    if (v === undefined) return undefined;
    const rec = toRecord(seq, v);
    return { seq, count: rec.count, t0: rec.t0, size: key.length + v.length, live: true };
  }

  /** Takes a removed record out of the figures (not the store). */
  private forget(e: HeadEntry): void {
    this.s.records--;
    this.s.readings -= e.count;
    this.s.bytes -= e.size;
    this.head.remove(e);
    this.recent.drop(e.seq);
  }

  private async afterRemoval(db: Level<Uint8Array, Uint8Array>, removed: number): Promise<void> {
    if (this.head.live === 0 && this.s.records > 0) {
      const from = this.head.coveredTo + 1;
      const rows = await db
        .iterator({ gte: queueKey(KIND_RECORD, from), lt: RECORD_END, limit: this.head.cap })
        .all();
      const loaded = rows
        .filter(([k]) => !this.tombstones.has(seqOfKey(k)))
        .map(([k, v]) => {
          const rec = toRecord(seqOfKey(k), v);
          return { seq: rec.seq, count: rec.count, t0: rec.t0, size: k.length + v.length };
        });
      const last = rows[rows.length - 1];
      const upTo = rows.length < this.head.cap || last === undefined ? this.s.nextSeq - 1 : seqOfKey(last[0]);
      this.head.refill(loaded, upTo);
    }
    this.refreshHeadFigures();
    this.deletesSinceCompact += removed;
    if (this.deletesSinceCompact >= COMPACT_EVERY) {
      this.deletesSinceCompact = 0;
      this.compactAcked(db);
    }
  }

  /** Compacts the tombstones below the head in the background (one at a time). */
  private compactAcked(db: Level<Uint8Array, Uint8Array>): void {
    const end = queueKey(KIND_RECORD, this.s.firstSeq ?? this.s.nextSeq);
    // `level` resolves to classic-level on Node, whose compactRange its typings do not declare.
    const compactable = db as unknown as Partial<Compactable>;
    const compactRange = compactable.compactRange?.bind(db);
    if (compactRange === undefined) return;
    this.compaction = this.compaction
      .then(() => compactRange(queueKey(KIND_RECORD, 0), end))
      .catch((err: unknown) => this.opts.log.warn({ err: String(err) }, 'queue compaction failed'));
  }

  private refreshHeadFigures(): void {
    const first = this.s.records > 0 ? this.head.first : undefined;
    this.s.firstSeq = first?.seq ?? null;
    this.s.oldestTs = first?.t0 ?? null;
  }

  private open(): Level<Uint8Array, Uint8Array> {
    if (this.db === null)
      throw new EdgegwError('EDGEGW_E_QUEUE_OPEN', 'the queue is not open', Exit.SOFTWARE);
    return this.db;
  }

  /** Runs mutations one at a time, in call order; a failure does not stop the ones after it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn);
    this.tail = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }
}

/** Whether stored figures can be right given the first HEAD_CAP records (all of them if fewer). */
function agrees(f: StoredFigures, head: readonly Omit<HeadEntry, 'live'>[]): boolean {
  if (head.length === HEAD_CAP) return f.records >= HEAD_CAP;
  const readings = head.reduce((sum, e) => sum + e.count, 0);
  const bytes = head.reduce((sum, e) => sum + e.size, 0);
  return f.records === head.length && f.readings === readings && f.recordBytes === bytes;
}

/** The stored figures counted from every record and quarantined record (a full scan). */
async function scanFigures(db: Level<Uint8Array, Uint8Array>): Promise<StoredFigures> {
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
