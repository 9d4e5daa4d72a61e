// Appending a record, with the whenFull policy. It applies when the record does not fit maxBytes
// (key + value bytes), when the dataDir's real size would pass maxBytes, or when the filesystem
// would fall under the free-space reserve (disk.ts). Space taken by removed records comes back by
// compaction first; then reject-new refuses the record, and drop-oldest deletes the oldest records
// (in a batch of their own, before the append) and compacts. A compaction needs free room for what
// it keeps: on a filesystem filled by others, where it has none, the record is refused under
// either policy (dropping would free nothing). A record bigger than the room left beside the
// quarantine is refused under either policy.
//
// A failed write: LevelDB may have half-written its log (later writes to that log are lost at
// the next open) or stopped writing for good, so the handle is reopened before anything else is
// written. If the record landed after all, it is kept; otherwise it is tried once more (after
// drop-oldest freed room), and then its seq is burned: never reused, and given up in the log.

import type { Reading, SealedRecord } from '../types.js';
import { EdgegwError, Exit } from '../errors.js';
import type { HeadEntry } from './head-index.js';
import type { FullQueueReport } from './full-report.js';
import type { QueueDisk } from './disk.js';
import type { Db, QueueStore } from './store.js';
import { KIND_RECORD, META_FIGURES, META_NEXT_SEQ, causeText, numberValue, queueKey } from './keys.js';
import { MARK_STEP, writeSeqMark } from './seq-mark.js';
import { META_CLOCK, type ClockStamp } from './clock-ranges.js';

/** A failed append whose seq was burned and whose readings were counted lost already. */
export class BurnedSeqError extends EdgegwError {}

export class Appender {
  constructor(
    private readonly store: QueueStore,
    private readonly full: FullQueueReport,
    private readonly listeners: ReadonlySet<() => void>,
    private readonly disk: QueueDisk,
    /** Closes and reopens the database after a failed write; throws when it cannot. */
    private readonly reopen: () => Promise<void>,
  ) {}

  /**
   * Seals and commits one record; its seq, or null when the full policy refused it. `stamp`: its
   * readings were stamped while the wall clock was not known good (clock-ranges.ts).
   */
  async append(readings: readonly Reading[], stamp?: ClockStamp): Promise<number | null> {
    const store = this.store;
    store.open();
    return this.place(store.opts.seal(store.s.nextSeq, readings, store.ids), stamp);
  }

  /**
   * Commits a sealed record: one just sealed at the next seq, or one write-behind held in memory
   * (its seq is below the next seq). Its seq, or null when the full policy refused it.
   */
  async place(rec: SealedRecord, stamp?: ClockStamp, held = false): Promise<number | null> {
    this.store.appending = rec.seq;
    try {
      return await this.placeAt(rec, stamp, held);
    } finally {
      this.store.appending = null;
    }
  }

  private async placeAt(
    rec: SealedRecord,
    stamp: ClockStamp | undefined,
    held: boolean,
  ): Promise<number | null> {
    const store = this.store;
    const { opts, s } = store;
    const db = store.open();
    const seq = rec.seq;
    const key = queueKey(KIND_RECORD, seq);
    const size = key.length + rec.bytes.length;
    const room = opts.maxBytes - store.quarantineBytes;
    if (size > room || (opts.whenFull === 'reject-new' && s.bytes + size > opts.maxBytes)) {
      return this.refuse(rec, held);
    }
    if (s.bytes + size > opts.maxBytes) await this.dropOldest(db, s.bytes + size - opts.maxBytes);
    if (!(await this.diskRoom(db, size))) {
      return this.refuse(rec, held);
    }
    if (!(await this.markAbove(seq))) {
      return this.refuse(rec, held);
    }

    let failure: unknown;
    for (let attempt = 1; attempt <= 2; attempt++) {
      try {
        await this.commit(store.open(), rec, key, size, stamp);
        this.notify();
        return seq;
      } catch (err) {
        failure = err;
        opts.log.warn(
          { code: 'EDGEGW_E_QUEUE_WRITE', seq, attempt, err: causeText(err) },
          'queue write failed',
        );
        await this.reopen();
        // The batch may have reached the log before the error (a failed fsync): then it is kept.
        if ((await store.entryOf(store.open(), seq)) !== undefined) {
          store.writtenReadings += rec.count;
          this.notify();
          return seq;
        }
        if (attempt === 1 && opts.whenFull === 'drop-oldest') {
          failure = await this.freeDisk(store.open(), 2 * size).then(
            () => failure,
            (err: unknown) => err,
          );
          if (store.broken !== null) break;
        }
      }
    }
    s.nextSeq = Math.max(s.nextSeq, seq + 1);
    store.head.skip(seq, seq);
    store.recent.skipped(seq);
    // The stream explains the burned seq with a notice, sealed by the next write that succeeds.
    store.notices.add({ from: seq, to: seq, why: 'write-failed', readings: rec.count });
    this.full.gaveUp(
      { seqFrom: seq, seqTo: seq, records: 1, readings: rec.count, reason: 'write-failed' },
      s,
    );
    throw new BurnedSeqError(
      'EDGEGW_E_QUEUE_WRITE',
      `the queue could not write record seq ${seq} (${causeText(failure)}); its ${rec.count} readings are dropped`,
      Exit.IOERR,
      { cause: failure },
    );
  }

  /**
   * The full policy refused `rec`. A held record (write-behind.ts) had its seq handed out, maybe
   * published: its seq is given up like a burned one, logged and explained in the stream.
   */
  private refuse(rec: SealedRecord, held: boolean): null {
    const s = this.store.s;
    if (!held) {
      this.full.refused(rec.count, s);
      return null;
    }
    const { seq, count } = rec;
    this.store.notices.add({ from: seq, to: seq, why: 'write-failed', readings: count });
    this.full.gaveUp({ seqFrom: seq, seqTo: seq, records: 1, readings: count, reason: 'write-failed' }, s);
    return null;
  }

  /** Raises the seq mark before `seq` reaches it (seq-mark.ts); false when it cannot be written. */
  async markAbove(seq: number): Promise<boolean> {
    const store = this.store;
    if (seq < store.seqCeiling) return true;
    const ceiling = seq + MARK_STEP;
    try {
      await writeSeqMark(store.opts.dir, ceiling);
    } catch (err) {
      // Without the mark a later repair could hand this seq out again: keep nothing under it.
      store.opts.log.warn(
        { code: 'EDGEGW_E_QUEUE_WRITE', seq, err: causeText(err) },
        'seq mark write failed',
      );
      return false;
    }
    store.seqCeiling = ceiling;
    return true;
  }

  private async commit(
    db: Db,
    rec: SealedRecord,
    key: Uint8Array,
    size: number,
    stamp: ClockStamp | undefined,
  ): Promise<void> {
    const store = this.store;
    const s = store.s;
    const seq = rec.seq;
    // nextSeq is the highest seq handed out plus one: seqs burned by failed writes stay burned.
    const b = db
      .batch()
      .put(key, rec.bytes)
      .put(META_NEXT_SEQ, numberValue(Math.max(s.nextSeq, seq + 1)))
      .put(META_FIGURES, store.figuresAfter(1, rec.count, size));
    // Its clock range rides in the same batch: a record on disk is never without it.
    const clock = stamp === undefined ? null : store.clockRanges.withCommit(seq, stamp, s.firstSeq ?? seq);
    if (clock !== null) b.put(META_CLOCK, clock.value);
    const notices = await store.write(
      b,
      store.sync,
      { committedRecords: 1, committedReadings: rec.count },
      { dataNext: Math.max(s.nextSeq, seq + 1) },
    );
    clock?.apply();
    // A held record written late (below the next seq): what was read ahead may not have it.
    if (seq < s.nextSeq) store.ahead.invalidate();
    s.nextSeq = Math.max(s.nextSeq, seq + 1);
    s.records++;
    s.readings += rec.count;
    store.writtenReadings += rec.count;
    s.bytes += size;
    store.head.appended({ seq, count: rec.count, t0: rec.t0, size });
    store.held.skipHoles(store.head);
    // Notices sealed in this batch took the seqs after the record's: no record there.
    if (notices !== null) store.head.skip(notices.from, notices.to);
    // Kept only for a follower (the uplink): without one, holding records would only feed the GC.
    if (this.listeners.size > 0) store.recent.appended(rec);
    else store.recent.skipped(seq);
    store.refreshHeadFigures();
  }

  private notify(): void {
    for (const l of this.listeners) {
      try {
        l();
      } catch (err) {
        // The record is committed whatever a listener does; say so rather than fail the append.
        this.store.log.error({ err: causeText(err) }, 'queue append listener failed');
      }
    }
  }

  /**
   * Whether `size` more bytes fit the disk budget and the free-space reserve (twice: the log now,
   * a table later), after compacting away removed records and, under drop-oldest, dropping.
   */
  private async diskRoom(db: Db, size: number): Promise<boolean> {
    const store = this.store;
    let over = await this.disk.over(2 * size);
    if (over === 0) return true;
    // A compaction writes what it keeps before it deletes what it replaces: without room for
    // that, dropping frees nothing and compacting would fail (and stop LevelDB's writes).
    if (!(await this.disk.roomToCompact(store.s.bytes))) return false;
    try {
      if (store.compactable) {
        if (store.tombstones.size > 0) await store.writeTombstones(db);
        await store.compactNow(db);
        this.disk.invalidate();
        over = await this.disk.over(2 * size);
        if (over === 0) return true;
      }
      if (store.opts.whenFull === 'reject-new') return false;
      // Others took the room: dropping the whole queue would not give it back.
      if (over > store.s.bytes) return false;
      await this.freeDisk(db, over);
      return (await this.disk.over(2 * size)) === 0;
    } catch (err) {
      // Freeing room failed (a compaction needs room too): this record is refused, and the
      // broken handle is reopened before anything else is written.
      store.log.warn({ code: 'EDGEGW_E_QUEUE_WRITE', err: causeText(err) }, 'queue could not free room');
      await this.reopen();
      return false;
    }
  }

  /** Drops the oldest records worth `need` bytes and a margin, and compacts them away. */
  private async freeDisk(db: Db, need: number): Promise<void> {
    const s = this.store.s;
    if (s.records === 0 || !(await this.disk.roomToCompact(s.bytes))) return;
    // The margin spares a compaction per append while the disk stays full; it is a share of what
    // is queued, so a disk filled by others does not cost the whole queue at once.
    await this.dropOldest(db, need + Math.floor(Math.min(this.disk.budget / 16, s.bytes / 8)));
    await this.store.compactNow(db);
    this.disk.invalidate();
  }

  /** Deletes the oldest records until `need` bytes are free (its own batch, before the append). */
  private async dropOldest(db: Db, need: number): Promise<void> {
    const head = this.store.head;
    const victims: HeadEntry[] = [];
    let freed = 0;
    while (freed < need && head.live > 0) {
      for (const e of head.oldest()) {
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

  private async deleteEntries(db: Db, victims: HeadEntry[]): Promise<void> {
    if (victims.length === 0) return;
    const store = this.store;
    const b = db.batch();
    let readings = 0;
    let bytes = 0;
    for (const e of victims) {
      b.del(queueKey(KIND_RECORD, e.seq));
      readings += e.count;
      bytes += e.size;
    }
    // store.write takes the pending tombstones too: the figures already count them as gone.
    b.put(META_FIGURES, store.figuresAfter(-victims.length, -readings, -bytes));
    const dropped = runs(victims);
    // The gaps go in the same batch as the drop: no drop is ever on disk unexplained.
    const gaps = dropped.map((r) => ({
      from: r.seqFrom,
      to: r.seqTo,
      why: 'dropped' as const,
      readings: r.readings,
    }));
    await store.write(b, store.sync, { droppedRecords: victims.length, droppedReadings: readings }, { gaps });
    for (const e of victims) store.forget(e);
    for (const run of dropped) this.full.gaveUp({ ...run, reason: 'whenFull' }, store.s);
    await store.afterRemoval(db, victims.length);
  }
}

/** Victims (in seq order) as runs of consecutive seqs, so every seq of a logged range was dropped. */
function runs(
  victims: readonly HeadEntry[],
): { seqFrom: number; seqTo: number; records: number; readings: number }[] {
  const out: { seqFrom: number; seqTo: number; records: number; readings: number }[] = [];
  for (const e of victims) {
    const last = out[out.length - 1];
    if (last !== undefined && last.seqTo + 1 === e.seq) {
      last.seqTo = e.seq;
      last.records++;
      last.readings += e.count;
    } else out.push({ seqFrom: e.seq, seqTo: e.seq, records: 1, readings: e.count });
  }
  return out;
}
