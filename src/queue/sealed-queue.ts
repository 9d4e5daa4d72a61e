// The durable queue: one LevelDB under dataDir, one sealed record per entry (DESIGN.md §1, §8).
// Key layout in keys.ts. This façade runs every mutation one at a time, in call order, and hands
// each job to its own part: opening and recovery (open.ts), append with the whenFull policy
// (append.ts), acknowledged deletes and their tombstones (deletes.ts), quarantine and verify
// (quarantine.ts), the disk budget and reserve (disk.ts), the lifetime totals (totals.ts), on the
// state they share (store.ts). A write that failed leaves the handle broken: the next mutation
// reopens the database first; if it cannot, the queue is fatal (opts.onFatal).

import type { Lifecycle, OpenRecord, Reading, SealedRecord } from '../types.js';
import type { IdCrypto, SensorIds } from '../seal/sensor-ids.js';
import { EdgegwError, Exit } from '../errors.js';
import { FullQueueReport } from './full-report.js';
import { Appender, BurnedSeqError } from './append.js';
import { AckDeletes } from './deletes.js';
import { WriteBehind } from './write-behind.js';
import { QueueDisk } from './disk.js';
import { openQueue, removeCopy } from './open.js';
import { sealedBy, type QueueKeys } from './key-ranges.js';
import { forgetDrained, hasDrained, switchKey } from './key-switch.js';
import { quarantineRecord, verifyRecords, verifySensorIds } from './quarantine.js';
import { loadTotals, zeroTotals, type QueueTotals } from './totals.js';
import {
  DEFAULT_MIN_FREE_BYTES,
  QueueStore,
  type Db,
  type QueueStats,
  type SealedQueueOptions,
} from './store.js';
import { KIND_RECORD, META_FIGURES, RECORD_END, causeText, queueKey, seqOfKey, toRecord } from './keys.js';
import { META_CLOCK, type ClockRange, type ClockRanges, type ClockStamp } from './clock-ranges.js';

export type { QueueStats, SealedQueueOptions } from './store.js';
export type { NoticeTotals } from './notices.js';

/**
 * `records` (≤ limit, and all there are from their first seq on when fewer) with the queued
 * notices and held records among them, in seq order, at most `limit`: one past the last record
 * read is left for the next read only when `limit` records came back (records beyond them were
 * not read). A held record committed during the read may come both ways: once is kept.
 */
function withNotices(records: SealedRecord[], notices: SealedRecord[], limit: number): SealedRecord[] {
  if (notices.length === 0) return records;
  const out = [...records, ...notices].sort((a, b) => a.seq - b.seq);
  const last = records[records.length - 1];
  const bound = records.length >= limit && last !== undefined ? last.seq : Infinity;
  return out.filter((r, i) => r.seq <= bound && out[i - 1]?.seq !== r.seq).slice(0, limit);
}
export type { QueueTotals } from './totals.js';

export class SealedQueue implements Lifecycle {
  private readonly store: QueueStore;
  private readonly listeners = new Set<() => void>();
  private readonly full: FullQueueReport;
  private readonly disk: QueueDisk;
  private readonly appender: Appender;
  private readonly deletes: AckDeletes;
  private readonly behind: WriteBehind;
  private tail: Promise<void> = Promise.resolve();
  /** The totals when this process first opened the queue: status counts from there. */
  private baseline: QueueTotals | null = null;
  private noticeBaseline = 0;
  private fatal: unknown = null;
  /** A drained key range is being forgotten (key-switch.ts). */
  private retiring = false;

  constructor(opts: SealedQueueOptions) {
    this.store = new QueueStore(opts);
    this.full = new FullQueueReport(opts.log, this.store.clock, opts.whenFull);
    this.disk = new QueueDisk(opts.dir, opts.maxBytes, opts.minFreeBytes ?? DEFAULT_MIN_FREE_BYTES, () =>
      this.store.clock.now(),
    );
    this.appender = new Appender(this.store, this.full, this.listeners, this.disk, () => this.reopen());
    this.deletes = new AckDeletes(this.store, (fn) => this.serial(fn));
    this.behind = new WriteBehind(
      this.store,
      this.appender,
      (fn) => this.serial(fn),
      () => this.appended(),
    );
  }

  async start(): Promise<void> {
    // On a full filesystem LevelDB could not open: give it the spare's space (disk.ts).
    await this.prepareOpen();
    await openQueue(this.store);
    await this.afterOpen();
    this.baseline = { ...this.store.s.totals };
    this.noticeBaseline = this.store.notices.totals.committed;
  }

  async stop(): Promise<void> {
    const store = this.store;
    this.behind.stop();
    // Clean stop: what is held and not acknowledged is committed; the reservation given back.
    if (store.db !== null) {
      await this.serial(() => this.behind.settle()).catch((err: unknown) => {
        store.log.error({ code: 'EDGEGW_E_QUEUE_WRITE', err: causeText(err) }, 'commit at stop failed');
      });
    }
    await this.tail;
    const db = store.db;
    this.full.flush(store.s);
    if (db === null) return;
    if (store.broken === null) await this.deletes.settle(db);
    await store.compaction;
    store.db = null;
    await db.close();
    await removeCopy(store);
  }

  /**
   * A reload: the new size budget, full policy and free-space reserve, applied between two
   * mutations (never in the middle of an append). A smaller maxBytes than the queue holds applies
   * whenFull at the next append, as a full queue does.
   */
  setLimits(limits: Pick<SealedQueueOptions, 'maxBytes' | 'whenFull' | 'minFreeBytes'>): Promise<void> {
    return this.serial(() => {
      const opts = this.store.opts;
      opts.maxBytes = limits.maxBytes;
      opts.whenFull = limits.whenFull;
      opts.minFreeBytes = limits.minFreeBytes ?? DEFAULT_MIN_FREE_BYTES;
      this.disk.setLimits(opts.maxBytes, opts.minFreeBytes);
      this.full.setPolicy(opts.whenFull);
      return Promise.resolve();
    });
  }

  /** The id of the key that sealed `seq` (from the key ranges; no trial decryption), or null. */
  sealedBy(seq: number): string | null {
    return sealedBy(this.store.keyRanges, seq);
  }

  /** The sensor-id dictionary records of format 3 refer to (seal/sensor-ids.ts). */
  get sensorIds(): SensorIds {
    return this.store.ids;
  }

  /** Key + value bytes of the dictionary (not in stats().bytes, which counts records). */
  sensorIdBytes(): number {
    return this.store.ids.size * 8 + this.store.ids.valueBytes;
  }

  /** Authenticates every needed dictionary entry with the key it names; for `edgegw queue verify`. */
  verifySensorIds(crypto: IdCrypto): { entries: number; damaged: number[] } {
    return verifySensorIds(this.store, crypto);
  }

  /** Which key sealed which seqs, oldest first. */
  keyRanges(): readonly { id: string; fromSeq: number }[] {
    return [...this.store.keyRanges];
  }

  /**
   * A live key switch (a rotate-queue-key job): `keys.current` seals from the next record on, its
   * range written first; `seat` switches the sealer. Resolves with the first seq it seals.
   */
  switchKey(keys: QueueKeys, seat: () => void): Promise<number> {
    return this.serial(() => switchKey(this.store, keys, seat));
  }

  /** The key sealing new records, and how many older keys still seal stored or held records. */
  keyStatus(): { sealing: string | null; older: number } {
    const ranges = this.store.keyRanges;
    const sealing = ranges.at(-1)?.id ?? this.store.opts.keys?.current ?? null;
    const older = new Set(ranges.map((r) => r.id).filter((id) => id !== sealing));
    return { sealing, older: older.size };
  }

  /** Stats from memory, O(1). */
  stats(): QueueStats {
    const s = this.store.s;
    const n = this.store.notices;
    return {
      ...s,
      totals: { ...s.totals },
      notices: n.queuedCount,
      pendingGaps: n.pendingGaps.length,
      noticeTotals: { ...n.totals },
      held: this.store.held.size,
    };
  }

  /** What changed since this process opened the queue (the status counters). */
  sinceStart(): QueueTotals & { lostReadings: number; writtenReadings: number; notices: number } {
    const t = this.store.s.totals;
    const b = this.baseline ?? t;
    const out = zeroTotals();
    for (const k of Object.keys(out) as (keyof QueueTotals)[]) out[k] = t[k] - b[k];
    const notices = this.store.notices.totals.committed - this.noticeBaseline;
    const { lostReadings } = this.store.s;
    return { ...out, lostReadings, writtenReadings: this.store.writtenReadings, notices };
  }

  /** The seq the next record takes (stats().nextSeq, without copying every figure). */
  nextSeq(): number {
    return this.store.s.nextSeq;
  }

  /** Offline figures for `edgegw queue inspect`. */
  inspect(): QueueStats {
    return this.stats();
  }

  /** The dataDir's real size, free space and reserve, measured now. */
  diskUsage(): ReturnType<QueueDisk['measure']> {
    return this.disk.measure();
  }

  onAppend(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Seals and commits one record; its seq, or null when the full policy refused it. `stamp`: its
   * readings were stamped while the wall clock was not known good (clock-ranges.ts).
   */
  append(readings: readonly Reading[], stamp?: ClockStamp, durableBy?: number): Promise<number | null> {
    const done = this.serial(() => this.appendNow(readings, stamp, durableBy));
    // drop-oldest may have taken the last records of an old key.
    if (this.store.keyRanges.length > 1)
      void done.then(
        () => this.retireDrained(),
        () => undefined,
      );
    return done.catch((err: unknown) => {
      // Not written, whatever the reason (also a closed queue): count the readings, unless the
      // seq was burned, which counted them already.
      if (!(err instanceof BurnedSeqError)) this.store.s.lostReadings += readings.length;
      throw err;
    });
  }

  /**
   * `durableBy` (monotonic): the record may wait in memory for its PUBACK until then
   * (write-behind.ts). Records stamped without a good clock are always committed first.
   */
  private async appendNow(
    readings: readonly Reading[],
    stamp: ClockStamp | undefined,
    durableBy: number | undefined,
  ): Promise<number | null> {
    if (stamp === undefined && durableBy !== undefined) {
      const seq = await this.behind.hold(readings, durableBy);
      if (seq !== null) return seq;
    }
    // Committed now: what is held goes first (the disk sees seqs in order).
    await this.behind.commitThrough(Infinity);
    this.behind.release();
    return this.appender.append(readings, stamp);
  }

  /** The open form of a record held in memory (never written, never to be opened), if it is. */
  heldOpen(seq: number): OpenRecord | undefined {
    return this.store.held.get(seq)?.open;
  }

  /** The seq ranges stamped while the wall clock was not known good, and how reads correct them. */
  get clockRanges(): ClockRanges {
    return this.store.clockRanges;
  }

  /**
   * The wall clock is good now in `boot`, where wall − since-boot reads `wallBase`: the ranges of
   * that boot get their offset, written before any read applies it. Returns the ranges corrected.
   */
  clockSynced(boot: string, wallBase: number): Promise<ClockRange[]> {
    return this.serial(async () => {
      const store = this.store;
      const change = store.clockRanges.withSync(boot, wallBase, store.s.firstSeq ?? store.s.nextSeq);
      if (change === null) return [];
      const b = store
        .open()
        .batch()
        .put(META_CLOCK, change.value)
        .put(META_FIGURES, store.figuresAfter(0, 0, 0));
      await store.write(b, store.sync);
      change.apply();
      this.appended();
      return change.corrected;
    });
  }

  /**
   * Holds back (or releases) this boot's records stamped without a known offset from reads. A
   * release tells the followers, which then read what was held.
   */
  holdClock(boot: string, holding: boolean): void {
    const was = this.store.clockRanges.held;
    this.store.clockRanges.setHold(boot, holding);
    if (was && !holding) this.appended();
  }

  /** Tells the followers (the uplink) that there is more to read. */
  private appended(): void {
    for (const l of this.listeners) {
      try {
        l();
      } catch (err) {
        this.store.log.error({ err: causeText(err) }, 'queue append listener failed');
      }
    }
  }

  /** Records with seq > afterSeq, oldest first, at most `limit`. */
  async read(afterSeq: number, limit: number): Promise<SealedRecord[]> {
    const store = this.store;
    const db = store.open();
    const s = store.s;
    // Seek past the head: below firstSeq there are only tombstones (or nothing), and notices,
    // which are kept in memory (notices.ts) and may be older than every record.
    const from = Math.max(afterSeq + 1, s.firstSeq ?? s.nextSeq);
    if (limit <= 0) return [];
    // Taken before the disk read: a held record committed meanwhile is then read at least once.
    const notices = [...store.notices.from(afterSeq + 1), ...store.held.from(afterSeq + 1)];
    const records = from >= s.nextSeq ? [] : await this.readRecords(db, from, limit);
    return withNotices(records, notices, limit);
  }

  private async readRecords(db: Db, from: number, limit: number): Promise<SealedRecord[]> {
    const store = this.store;
    const recent = store.recent.read(from, store.s.nextSeq, limit);
    if (recent !== null) return recent;
    // Held records are not stored: the highest that may be is below them.
    const lastStored = Math.min(store.s.nextSeq, store.held.lowest()) - 1;
    const ahead = store.ahead.read(from, limit, lastStored);
    if (ahead !== null) return ahead;
    // Deleted records whose tombstones are not written yet are still on disk: read past those in
    // the range read. Counting all of them read up to 1,024 rows extra per call: 32-record reads
    // took ~2 ms, and a compressed drain (~600 records acked per PUBACK) left the quota half used.
    const skip = store.tombstones.countFrom(from);
    const generation = store.ahead.generation;
    const want = Math.max(limit, store.ahead.cap);
    const rows = await db
      .iterator({ gte: queueKey(KIND_RECORD, from), lt: RECORD_END, limit: want + skip })
      .all();
    const head = store.head;
    const kept: SealedRecord[] = [];
    for (const [k, v] of rows) {
      const seq = seqOfKey(k);
      // Deleted while this read ran (its tombstone written meanwhile): the head index knows.
      if (store.tombstones.has(seq) || (seq <= head.coveredTo && head.find(seq) === undefined)) continue;
      kept.push(toRecord(seq, v));
    }
    const lastRow = rows[rows.length - 1];
    const last = lastRow === undefined ? from - 1 : seqOfKey(lastRow[0]);
    store.ahead.fill(generation, from, kept, rows.length < want + skip ? Math.max(last, lastStored) : last);
    return kept.length > limit ? kept.slice(0, limit) : kept;
  }

  /**
   * Deletes an acknowledged record. It is gone at once for reads and figures; its tombstone is
   * written with the next batch (see tombstones.ts), so a crash may only bring it back once.
   * True when it was still queued (counted delivered); false when it was gone already.
   */
  delete(seq: number): Promise<boolean> {
    return this.deletes.delete(seq).then((removed) => {
      this.retireDrained();
      return removed;
    });
  }

  /** Once the oldest key ranges hold nothing, forgets them (key-switch.ts), one at a time. */
  private retireDrained(): void {
    if (this.retiring || !hasDrained(this.store)) return;
    this.retiring = true;
    const store = this.store;
    void this.serial(() => forgetDrained(store))
      .then((ids) => {
        if (ids.length > 0) store.opts.keysRetired?.(ids);
      })
      .catch((err: unknown) => {
        // Kept as they were: the next drain or start tries again.
        store.log.warn(
          { code: 'EDGEGW_E_QUEUE_WRITE', err: causeText(err) },
          'drained key ranges not forgotten',
        );
      })
      .finally(() => (this.retiring = false));
  }

  /** Moves a record that failed authentication out of the record range and counts it. */
  quarantine(seq: number, reason: string): Promise<void> {
    return this.serial(() => quarantineRecord(this.store, seq, reason)).then(() => this.retireDrained());
  }

  /** Authenticates every record with `open` (does not quarantine); for `edgegw queue verify`. */
  verify(open: (rec: SealedRecord) => unknown): Promise<{ ok: number; tampered: number[] }> {
    return verifyRecords(this.store, open);
  }

  /** The write buffer for this filesystem; on a full one, the spare's space for LevelDB to open. */
  private async prepareOpen(): Promise<void> {
    this.store.writeBufferSize = await this.disk.bufferSize();
    // A read-only command writes nothing in dataDir (it opens a private copy).
    if (this.store.opts.readOnly !== true) await this.disk.releaseSpareIfShort();
  }

  /** The totals (read only: a read-only command never writes) and the spare, after an open. */
  private async afterOpen(): Promise<void> {
    const store = this.store;
    const s = store.s;
    const { totals, derived } = await loadTotals(store.open(), s);
    if (derived && (s.records > 0 || s.quarantined > 0)) {
      store.log.info(
        { committedRecords: totals.committedRecords },
        'queue totals derived from the stored figures',
      );
    }
    s.totals = totals;
    await store.clockRanges.load(store.open());
    if (store.opts.readOnly !== true) await this.disk.ensureSpare();
  }

  /**
   * Closes the broken handle and opens the database again (a new log), keeping what memory knows
   * that the disk may not yet: the highest seq handed out and the acks not yet written.
   */
  private async reopen(): Promise<void> {
    const store = this.store;
    const cause = store.broken;
    const nextSeq = store.s.nextSeq;
    const acked = store.tombstones.pendingSeqs();
    // Gaps known only in memory (a burned seq) outlive the reopen; those on disk are read again.
    const gaps = store.notices.pendingGaps;
    const db = store.db;
    store.db = null;
    await db?.close().catch(() => undefined);
    store.reset();
    try {
      await this.prepareOpen();
      await openQueue(store);
      await this.afterOpen();
    } catch (err) {
      // openQueue may have opened the handle before what followed it failed.
      await (store.db as Db | null)?.close().catch(() => undefined);
      store.db = null;
      this.fatal = err;
      store.log.fatal(
        { code: 'EDGEGW_E_QUEUE_WRITE', err: causeText(err), write: causeText(cause) },
        'queue write failed and the database cannot be reopened',
      );
      store.opts.onFatal?.(err);
      throw new EdgegwError(
        'EDGEGW_E_QUEUE_WRITE',
        `the queue cannot write and cannot reopen ${store.opts.dir}: ${causeText(err)}`,
        Exit.IOERR,
        { cause: err },
      );
    }
    this.disk.invalidate();
    const s = store.s;
    const recovered = s.nextSeq;
    s.nextSeq = Math.max(recovered, nextSeq);
    // Held records (write-behind.ts) are not stored yet: the index must not cover their seqs.
    store.head.skip(recovered, Math.min(s.nextSeq, store.held.lowest()) - 1);
    store.resetRecent(s.nextSeq);
    const reopened = store.open();
    for (const seq of acked) {
      const e = await store.entryOf(reopened, seq);
      if (e === undefined) continue;
      store.forget(e);
      store.tombstones.add(seq);
      s.totals.deliveredRecords++;
      s.totals.deliveredReadings += e.count;
    }
    const stored = store.notices.pendingGaps;
    for (const g of gaps) {
      if (!stored.some((x) => x.why === g.why && x.from <= g.from && g.to <= x.to)) store.notices.add(g);
    }
    store.refreshHeadFigures();
    store.log.warn(
      { code: 'EDGEGW_E_QUEUE_WRITE', nextSeq: s.nextSeq },
      'queue database reopened after a failed write',
    );
  }

  /**
   * Runs mutations one at a time, in call order; a failure does not stop the ones after it. A
   * handle broken by a failed write is reopened before the next one.
   */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(async () => {
      if (this.fatal !== null) {
        throw new EdgegwError(
          'EDGEGW_E_QUEUE_WRITE',
          'the queue is closed after a fatal write error',
          Exit.IOERR,
        );
      }
      if (this.store.broken !== null) await this.reopen();
      return fn();
    });
    this.tail = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }
}
