// The state every part of the queue shares (sealed-queue.ts is the façade): the open database,
// the figures in memory, the head index, the recent records and the pending tombstones, with the
// helpers each job needs to change them consistently.
//
// `bytes` counts stored key + value bytes of records and quarantined records, and the whenFull
// policy keeps it ≤ maxBytes. Deleted keys stay as tombstones until compaction, so reads seek past
// the head (never from the start of the range), and the acknowledged range is compacted once a
// write buffer's worth of records (writeBufferSize bytes) was removed since the last compaction.
// Such a compaction flushes the memtable, whose table spans from the head's tombstones to the
// newest records, so LevelDB merges it with the tables in between: each one rewrites live records
// whatever it removes. After every 10,000 deletes (~0.5 MB of records) a drain wrote ~20× what it
// removed (96.7 MB in 20 s of a 1,000,000-reading drain); after 4 MiB removed, with 1 MiB
// tables (disk.ts), 5.5 MB (BENCHMARKS.md, "Flash during a drain").

import type { Level } from 'level';
import type { Logger } from 'pino';
import {
  systemClock,
  type Clock,
  type GapNotice,
  type OpenRecord,
  type Reading,
  type SealedRecord,
} from '../types.js';
import { EdgegwError, Exit } from '../errors.js';
import { HeadIndex, type HeadEntry } from './head-index.js';
import { RecentRecords } from './recent.js';
import { ReadAhead } from './read-ahead.js';
import { Tombstones } from './tombstones.js';
import {
  KIND_RECORD,
  KIND_SENSOR_ID,
  META_FIGURES,
  META_SENSOR_ID_NEXT,
  META_NEXT_SEQ,
  META_RESERVED,
  META_SETTLED,
  META_TOTALS,
  RECORD_END,
  figuresValue,
  numberValue,
  queueKey,
  seqOfKey,
  toRecord,
} from './keys.js';
import { addTotals, totalsValue, zeroTotals, type QueueTotals } from './totals.js';
import type { KeyRange, QueueKeys } from './key-ranges.js';
import { ClockRanges } from './clock-ranges.js';
import { NoticeBook, type NoticeTotals } from './notices.js';
import { SensorIds } from '../seal/sensor-ids.js';
import { HeldRecords } from './held.js';

/** The queue's figures with its notice records (notices.ts). */
export interface QueueStats extends StoreFigures {
  /** Notice records queued (waiting for their PUBACK); not in records/readings/bytes. */
  notices: number;
  /** Gaps not yet sealed into a notice record. */
  pendingGaps: number;
  /** Lifetime notice figures: committed = delivered + quarantined + queued. */
  noticeTotals: NoticeTotals;
  /** Records waiting in memory for their PUBACK, not written (write-behind.ts); not in records. */
  held: number;
}

export interface StoreFigures {
  records: number;
  readings: number;
  bytes: number;
  firstSeq: number | null;
  nextSeq: number;
  oldestTs: number | null;
  quarantined: number;
  /** Since start: what the whenFull policy dropped or refused. */
  droppedReadings: number;
  droppedRecords: number;
  /** Lifetime figures, persisted with every change (totals.ts). */
  totals: QueueTotals;
  /** Since start: readings that never got a seq kept (refused by the policy, or a failed write). */
  lostReadings: number;
}

export interface SealedQueueOptions {
  dir: string;
  maxBytes: number;
  whenFull: 'drop-oldest' | 'reject-new';
  durability: 'fsync' | 'os';
  /**
   * Seals a record. `ids` is the queue's sensor-id dictionary: a record sealed with it (format 3)
   * refers to its entries, which the queue writes before or with the record (sensor-ids.ts).
   */
  seal: (seq: number, readings: readonly Reading[], ids: SensorIds) => SealedRecord;
  /**
   * Write-behind (write-behind.ts): the record `open` would give for what `seal` sealed. Without
   * it, or without `writeBehind`, every record is committed before it is handed to the uplink.
   */
  opened?: (seq: number, readings: readonly Reading[]) => OpenRecord;
  /**
   * How many records may wait in memory for their PUBACK now (the uplink's in-flight window
   * while it is connected); 0 while it is not: then every record is committed at once.
   */
  writeBehind?: () => number;
  /** Seals a notice record made at `t0`; without it, gaps stay pending (kept in meta), never sealed. */
  sealNotice?: (seq: number, notice: GapNotice, t0: number) => SealedRecord;
  log: Logger;
  /** Free space the queue leaves on the filesystem (disk.ts); default 64 MiB. */
  minFreeBytes?: number;
  /** For rate-limiting the full-queue warning; defaults to the system clock. */
  clock?: Clock;
  /**
   * The queue cannot write and cannot reopen its database: nothing it can do keeps more data.
   * The daemon exits non-zero so systemd restarts it.
   */
  onFatal?: (err: unknown) => void;
  /** Open a private copy of dataDir, so nothing is written there (inspect, verify). */
  readOnly?: boolean;
  /** The keys held: a start whose keys cannot open every stored record is refused (key-ranges.ts). */
  keys?: QueueKeys;
  /**
   * The oldest key ranges drained: these key ids seal and open nothing stored any more, and their
   * ranges and dictionary entries are deleted (key-switch.ts). Called after that write.
   */
  keysRetired?: (ids: readonly string[]) => void;
}

/** What a batch brings for the notices (notices.ts). */
export interface WriteNotices {
  /** Gaps this batch's change makes: pending once it is written, never if it fails. */
  gaps?: readonly GapNotice[];
  /** The batch holds a record: the seq after it (notices sealed with it come next). */
  dataNext?: number;
  /** Seal pending gaps whatever the time since the last notice (at stop). */
  forceSeal?: boolean;
}

/** The seqs of the notices a batch sealed, or null. */
export type SealedSeqs = { from: number; to: number } | null;

export const DEFAULT_MIN_FREE_BYTES = 64 * 1024 * 1024;

export type Db = Level<Uint8Array, Uint8Array>;
export type Batch = ReturnType<Db['batch']>;

export const HEAD_CAP = 4096;
/** The newest records kept in memory for the uplink's live reads (at most these many, these bytes). */
const RECENT_CAP = 64;
const RECENT_BYTES = 1024 * 1024;
/** Backlog records read ahead of the uplink's pulls (at most these many, these bytes). */
export const AHEAD_CAP = 256;
const AHEAD_BYTES = 256 * 1024;

interface Compactable {
  compactRange(start: Uint8Array, end: Uint8Array): Promise<void>;
}

export class QueueStore {
  db: Db | null = null;
  /** The write that failed, when the handle must not be written again before a reopen. */
  broken: unknown = null;
  head = new HeadIndex(HEAD_CAP);
  tombstones = new Tombstones();
  recent = new RecentRecords(1, RECENT_CAP, RECENT_BYTES);
  ahead = new ReadAhead(AHEAD_CAP, AHEAD_BYTES);
  quarantineBytes = 0;
  /** LevelDB's write buffer (disk.ts), set before each open. */
  writeBufferSize = 4 * 1024 * 1024;
  compaction: Promise<void> = Promise.resolve();
  /** Which key sealed which seqs: settled at start, changed by a live switch or a drain. */
  keyRanges: KeyRange[] = [];
  /** The private copy a read-only queue opened (removed at stop), or null. */
  copyDir: string | null = null;
  /** No seq ≥ this was ever used (seq-mark.ts); raised before a seq reaches it. */
  seqCeiling = 0;
  /** Seq ranges stamped while the wall clock was not known good (clock-ranges.ts). */
  readonly clockRanges = new ClockRanges();
  /** Notice records and the gaps waiting to become ones (loaded at every open). */
  readonly notices = new NoticeBook();
  /** The sensor-id dictionary (loaded at every open; its unwritten entries ride every batch). */
  readonly ids = new SensorIds();
  /**
   * The seq an append in progress took (its record is sealed with it before the batches that
   * make room are written), or null: no notice may be sealed at it by those batches.
   */
  appending: number | null = null;
  /** Records handed to the uplink and not yet written (write-behind.ts). */
  readonly held = new HeldRecords();
  /** Write-behind's reservation: seqs handed out unwritten are all below it; 0 when none. */
  reserved = 0;
  /** META_RESERVED and META_SETTLED as last written (-1: unknown); kept across a reopen. */
  reservedOnDisk = -1;
  settledOnDisk = -1;
  private deletesSinceCompact = 0;
  /** Key + value bytes of the records removed since the last compaction. */
  private removedBytes = 0;
  /**
   * Since start: readings written to disk (committed at once, or held for their PUBACK and written
   * because it was late). Held ones acknowledged in time are committed but never written.
   */
  writtenReadings = 0;
  readonly s: StoreFigures = {
    records: 0,
    readings: 0,
    bytes: 0,
    firstSeq: null,
    nextSeq: 1,
    oldestTs: null,
    quarantined: 0,
    droppedReadings: 0,
    droppedRecords: 0,
    totals: zeroTotals(),
    lostReadings: 0,
  };

  constructor(readonly opts: SealedQueueOptions) {}

  /** Forgets what was read from the database (before it is opened again); session figures stay. */
  reset(): void {
    this.head = new HeadIndex(HEAD_CAP);
    this.tombstones = new Tombstones();
    this.ahead.invalidate();
    this.quarantineBytes = 0;
    this.deletesSinceCompact = 0;
    this.removedBytes = 0;
    this.broken = null;
    Object.assign(this.s, {
      records: 0,
      readings: 0,
      bytes: 0,
      firstSeq: null,
      oldestTs: null,
      quarantined: 0,
    });
    this.s.totals = zeroTotals();
  }

  get clock(): Clock {
    return this.opts.clock ?? systemClock;
  }

  get sync(): boolean {
    return this.opts.durability === 'fsync';
  }

  get log(): Logger {
    return this.opts.log;
  }

  /** The recent-records cache starts over at `nextSeq` (after recovery). */
  resetRecent(nextSeq: number): void {
    this.recent = new RecentRecords(nextSeq, RECENT_CAP, RECENT_BYTES);
  }

  open(): Db {
    if (this.db === null)
      throw new EdgegwError('EDGEGW_E_QUEUE_OPEN', 'the queue is not open', Exit.SOFTWARE);
    return this.db;
  }

  /** The stored figures once a change of these amounts is written (put in that change's batch). */
  figuresAfter(records: number, readings: number, recordBytes: number, quarantineBytes = 0): Uint8Array {
    const s = this.s;
    return figuresValue({
      records: s.records + records,
      readings: s.readings + readings,
      recordBytes: s.bytes - this.quarantineBytes + recordBytes,
      quarantineBytes: this.quarantineBytes + quarantineBytes,
    });
  }

  /**
   * Writes a batch that puts META_FIGURES, with every pending tombstone (the figures were taken
   * from memory, where those records are already gone) and the totals after `delta`, which is
   * applied in memory once written. A failed write leaves the handle `broken`: LevelDB may have
   * half-written its log, and appending to that log again loses what follows at the next open.
   * Dictionary entries not yet written go in too, whatever the batch: in the log they come before
   * any later batch, so a record never reaches the disk without the entries it uses.
   */
  async write(
    b: Batch,
    sync: boolean,
    delta: Partial<QueueTotals> = {},
    o: WriteNotices = {},
  ): Promise<SealedSeqs> {
    const after = addTotals(this.s.totals, delta);
    b.put(META_TOTALS, totalsValue(after));
    const taken = this.tombstones.take(b);
    const gaps = o.gaps ?? [];
    const base = o.dataNext ?? this.s.nextSeq;
    const now = this.clock.now();
    const seal = this.opts.sealNotice;
    const book = this.notices;
    // Only in a batch as durable as records (a notice's seq must never come back after a power
    // cut), and below the seq mark (seq-mark.ts): otherwise the gaps wait, kept in meta.
    const canSeal =
      seal !== undefined &&
      (this.appending === null || o.dataNext !== undefined) &&
      sync === this.sync &&
      base + book.pendingGaps.length + gaps.length < this.seqCeiling &&
      book.due(now, o.forceSeal === true, gaps.length);
    const nb = book.take(b, base, canSeal ? (seq, gap) => seal(seq, gap, now) : null, gaps);
    const ids = this.ids.unwrittenEntries();
    for (const [i, e] of ids) b.put(queueKey(KIND_SENSOR_ID, i), e);
    if (ids.length > 0) b.put(META_SENSOR_ID_NEXT, numberValue(this.ids.nextIndex));
    // Write-behind: what a restart needs to tell the seqs that may be missing (write-behind.ts).
    const reserved = this.reserved;
    if (reserved !== this.reservedOnDisk) {
      b.put(META_RESERVED, numberValue(reserved));
      // Given back: from now on the stored next seq alone says where a start continues.
      const next = Math.max(this.s.nextSeq, base + nb.sealed.length);
      if (reserved === 0) b.put(META_NEXT_SEQ, numberValue(next));
    }
    const settled = Math.min(this.held.lowest(), base);
    const putSettled = reserved > 0 && settled !== this.settledOnDisk;
    if (putSettled) b.put(META_SETTLED, numberValue(settled));
    try {
      await b.write({ sync });
    } catch (err) {
      this.tombstones.restore(taken);
      book.restore(nb);
      this.broken = err;
      throw err;
    }
    this.tombstones.settle(taken);
    book.settle(nb, now);
    this.ids.written(ids);
    this.reservedOnDisk = reserved;
    if (putSettled) this.settledOnDisk = settled;
    this.s.totals = after;
    const n = nb.sealed.length;
    if (n === 0) return null;
    this.s.nextSeq = Math.max(this.s.nextSeq, base + n);
    // A batch with a record of its own skips these seqs in the head once that record is in it.
    if (o.dataNext === undefined) this.head.skip(base, base + n - 1);
    return { from: base, to: base + n - 1 };
  }

  /** Writes pending notice deletes and seals pending gaps now (at stop), if there are any. */
  async flushNotices(db: Db): Promise<void> {
    const book = this.notices;
    if (book.pendingGaps.length === 0 && !book.deletesPending) return;
    await this.write(
      db.batch().put(META_FIGURES, this.figuresAfter(0, 0, 0)),
      this.sync,
      {},
      { forceSeal: true },
    );
  }

  /** Whether there are removed records whose space only a compaction gives back. */
  get compactable(): boolean {
    return this.deletesSinceCompact > 0 || this.tombstones.size > 0;
  }

  /** Compacts everything below the head now (the whenFull policy needs the space back). */
  async compactNow(db: Db): Promise<void> {
    await this.compaction;
    const compactRange = compactRangeOf(db);
    this.deletesSinceCompact = 0;
    this.removedBytes = 0;
    if (compactRange === undefined) return;
    try {
      await compactRange(queueKey(KIND_RECORD, 0), queueKey(KIND_RECORD, this.s.firstSeq ?? this.s.nextSeq));
    } catch (err) {
      // A failed compaction stops LevelDB's writes too (its background error): reopen first.
      this.broken = err;
      throw err;
    }
  }

  /** Writes the pending tombstones in a batch of their own (not synced: a lost delete is a resend). */
  async writeTombstones(db: Db): Promise<void> {
    await this.writeFigures(db, false);
  }

  /**
   * A batch of the figures alone, and with them what write() adds to every batch (tombstones,
   * sensor-id entries, the write-behind reservation).
   */
  async writeFigures(db: Db, sync: boolean): Promise<void> {
    await this.write(db.batch().put(META_FIGURES, this.figuresAfter(0, 0, 0)), sync);
  }

  /** The entry of a stored record: from the head index, or read from disk beyond it. */
  async entryOf(db: Db, seq: number): Promise<HeadEntry | undefined> {
    // An ack beyond the index while it has room (a drain's acks overtook it): one range read of
    // the next records instead of a disk read per ack, which made a large ack batch take seconds.
    if (seq > this.head.coveredTo && this.head.live <= this.head.cap / 2) await this.extendHead(db);
    if (seq <= this.head.coveredTo) return this.head.find(seq);
    if (this.tombstones.has(seq)) return undefined;
    const key = queueKey(KIND_RECORD, seq);
    const v = await db.get(key);
    if (v === undefined) return undefined;
    const rec = toRecord(seq, v);
    return { seq, count: rec.count, t0: rec.t0, size: key.length + v.length, live: true };
  }

  /** Reads the stored records after the index's end into it, as many as it has room for. */
  private async extendHead(db: Db): Promise<void> {
    const room = this.head.cap - this.head.live;
    // Held records are not stored yet: the index must not claim to cover their seqs.
    const stored = Math.min(this.s.nextSeq, this.held.lowest()) - 1;
    if (room <= 0 || this.head.coveredTo >= stored) return;
    const from = this.head.coveredTo + 1;
    const rows = await db.iterator({ gte: queueKey(KIND_RECORD, from), lt: RECORD_END, limit: room }).all();
    const loaded = rows
      .filter(([k]) => !this.tombstones.has(seqOfKey(k)))
      .map(([k, v]) => {
        const rec = toRecord(seqOfKey(k), v);
        return { seq: rec.seq, count: rec.count, t0: rec.t0, size: k.length + v.length };
      });
    const last = rows[rows.length - 1];
    const upTo = Math.min(rows.length < room || last === undefined ? stored : seqOfKey(last[0]), stored);
    this.head.refill(loaded, upTo);
  }

  /** Takes a removed record out of the figures (not the store). */
  forget(e: HeadEntry): void {
    this.s.records--;
    this.s.readings -= e.count;
    this.s.bytes -= e.size;
    this.removedBytes += e.size;
    this.head.remove(e);
    this.recent.drop(e.seq);
    this.ahead.drop(e.seq);
  }

  async afterRemoval(db: Db, removed: number): Promise<void> {
    if (this.head.live === 0 && this.s.records > 0) await this.extendHead(db);
    this.refreshHeadFigures();
    this.deletesSinceCompact += removed;
    if (this.removedBytes >= this.writeBufferSize) {
      this.deletesSinceCompact = 0;
      this.removedBytes = 0;
      this.compactAcked(db);
    }
  }

  /** Compacts the tombstones below the head in the background (one at a time). */
  private compactAcked(db: Db): void {
    const end = queueKey(KIND_RECORD, this.s.firstSeq ?? this.s.nextSeq);
    const compactRange = compactRangeOf(db);
    if (compactRange === undefined) return;
    this.compaction = this.compaction
      .then(() => compactRange(queueKey(KIND_RECORD, 0), end))
      .catch((err: unknown) => this.opts.log.warn({ err: String(err) }, 'queue compaction failed'));
  }

  refreshHeadFigures(): void {
    const first = this.s.records > 0 ? this.head.first : undefined;
    this.s.firstSeq = first?.seq ?? null;
    this.s.oldestTs = first?.t0 ?? null;
  }
}

/** `level` resolves to classic-level on Node, whose compactRange its typings do not declare. */
function compactRangeOf(db: Db): Compactable['compactRange'] | undefined {
  return (db as unknown as Partial<Compactable>).compactRange?.bind(db);
}
