// The durable queue: one LevelDB under dataDir, one sealed record per entry (DESIGN.md §1, §8).
// Key layout in keys.ts. This façade runs every mutation one at a time, in call order, and hands
// each job to its own part: opening and recovery (open.ts), append with the whenFull policy
// (append.ts), acknowledged deletes and their tombstones (deletes.ts), quarantine and verify
// (quarantine.ts), on the state they share (store.ts).

import type { Lifecycle, Reading, SealedRecord } from '../types.js';
import { FullQueueReport } from './full-report.js';
import { Appender } from './append.js';
import { AckDeletes } from './deletes.js';
import { openQueue, removeCopy } from './open.js';
import { sealedBy } from './key-ranges.js';
import { quarantineRecord, verifyRecords } from './quarantine.js';
import { QueueStore, type QueueStats, type SealedQueueOptions } from './store.js';
import { KIND_RECORD, RECORD_END, queueKey, seqOfKey, toRecord } from './keys.js';

export type { QueueStats, SealedQueueOptions } from './store.js';

export class SealedQueue implements Lifecycle {
  private readonly store: QueueStore;
  private readonly listeners = new Set<() => void>();
  private readonly full: FullQueueReport;
  private readonly appender: Appender;
  private readonly deletes: AckDeletes;
  private tail: Promise<void> = Promise.resolve();

  constructor(opts: SealedQueueOptions) {
    this.store = new QueueStore(opts);
    this.full = new FullQueueReport(opts.log, this.store.clock, opts.whenFull);
    this.appender = new Appender(this.store, this.full, this.listeners);
    this.deletes = new AckDeletes(this.store, (fn) => this.serial(fn));
  }

  async start(): Promise<void> {
    await openQueue(this.store);
  }

  async stop(): Promise<void> {
    const store = this.store;
    const db = store.db;
    if (db === null) return;
    await this.tail;
    await this.deletes.settle(db);
    await store.compaction;
    this.full.flush(store.s);
    store.db = null;
    await db.close();
    await removeCopy(store);
  }

  /** The id of the key that sealed `seq` (from the key ranges; no trial decryption), or null. */
  sealedBy(seq: number): string | null {
    return sealedBy(this.store.keyRanges, seq);
  }

  /** Which key sealed which seqs, oldest first. */
  keyRanges(): readonly { id: string; fromSeq: number }[] {
    return [...this.store.keyRanges];
  }

  /** Stats from memory, O(1). */
  stats(): QueueStats {
    return { ...this.store.s };
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
    return this.serial(() => this.appender.append(readings));
  }

  /** Records with seq > afterSeq, oldest first, at most `limit`. */
  async read(afterSeq: number, limit: number): Promise<SealedRecord[]> {
    const store = this.store;
    const db = store.open();
    const s = store.s;
    // Seek past the head: below firstSeq there are only tombstones (or nothing).
    const from = Math.max(afterSeq + 1, s.firstSeq ?? s.nextSeq);
    if (limit <= 0 || from >= s.nextSeq) return [];
    const recent = store.recent.read(from, s.nextSeq, limit);
    if (recent !== null) return recent;
    // Deleted records whose tombstones are not written yet are still on disk: read past them.
    const rows = await db
      .iterator({ gte: queueKey(KIND_RECORD, from), lt: RECORD_END, limit: limit + store.tombstones.size })
      .all();
    const out: SealedRecord[] = [];
    for (const [k, v] of rows) {
      const seq = seqOfKey(k);
      if (!store.tombstones.has(seq) && out.length < limit) out.push(toRecord(seq, v));
    }
    return out;
  }

  /**
   * Deletes an acknowledged record. It is gone at once for reads and figures; its tombstone is
   * written with the next batch (see tombstones.ts), so a crash may only bring it back once.
   */
  delete(seq: number): Promise<void> {
    return this.deletes.delete(seq);
  }

  /** Moves a record that failed authentication out of the record range and counts it. */
  quarantine(seq: number, reason: string): Promise<void> {
    return this.serial(() => quarantineRecord(this.store, seq, reason));
  }

  /** Authenticates every record with `open` (does not quarantine); for `edgegw queue verify`. */
  verify(open: (rec: SealedRecord) => unknown): Promise<{ ok: number; tampered: number[] }> {
    return verifyRecords(this.store, open);
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
