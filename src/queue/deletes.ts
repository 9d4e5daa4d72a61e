// Deletes of acknowledged records. A delete is applied in memory at once (gone for reads and
// figures); its tombstone is written with the next batch (see tombstones.ts), so a crash may only
// bring the record back once. Deletes that arrive together are applied in one serialized step.

import type { Db, QueueStore } from './store.js';
import { TOMBSTONE_BATCH, TOMBSTONE_MS } from './tombstones.js';
import { causeText } from './keys.js';

/**
 * The most acks one serialized step applies: a drain acknowledges thousands of records a second,
 * and commits queued behind one huge step would wait for all of it.
 */
export const DELETE_STEP = 2048;

interface PendingDelete {
  seq: number;
  resolve: (removed: boolean) => void;
  reject: (err: unknown) => void;
}

export class AckDeletes {
  private pending: PendingDelete[] = [];
  /** A flush is queued on the mutation chain (it takes what is pending when it runs). */
  private queued = false;
  private timer: unknown = null;

  constructor(
    private readonly store: QueueStore,
    /** The queue's mutation chain: every write runs through it, one at a time. */
    private readonly serial: <T>(fn: () => Promise<T>) => Promise<T>,
  ) {}

  /** True when the record was still queued; false when it was gone already (dropped, quarantined, acked). */
  delete(seq: number): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.pending.push({ seq, resolve, reject });
      this.schedule();
    });
  }

  /** Writes the tombstones still pending (at stop); the caller holds the mutation chain. */
  async settle(db: Db): Promise<void> {
    this.disarm();
    if (this.store.tombstones.size > 0) await this.store.writeTombstones(db);
    // Gaps still pending are sealed now, so the stream explains them at the next start.
    await this.store.flushNotices(db);
  }

  private schedule(): void {
    if (this.queued) return;
    this.queued = true;
    void this.serial(() => this.flush());
  }

  private async flush(): Promise<void> {
    const store = this.store;
    this.queued = false;
    const batch = this.pending.splice(0, DELETE_STEP);
    // The rest goes after the commits queued meanwhile.
    if (this.pending.length > 0) this.schedule();
    if (batch.length === 0) return;
    try {
      const db = store.open();
      const removed: boolean[] = [];
      for (const { seq } of batch) {
        // A notice record: counted in the notice totals, its delete written with the next batch.
        if (store.notices.acked(seq)) {
          removed.push(true);
          continue;
        }
        // Held in memory (write-behind): delivered before its commit, so never written; counted
        // committed too (it became durable at the broker), on disk with the next batch.
        const held = store.held.get(seq);
        if (held !== undefined) {
          store.held.delete(seq);
          store.held.unstored(seq, store.head);
          const t = store.s.totals;
          t.committedRecords++;
          t.committedReadings += held.rec.count;
          t.deliveredRecords++;
          t.deliveredReadings += held.rec.count;
          removed.push(true);
          continue;
        }
        const e = await store.entryOf(db, seq);
        removed.push(e !== undefined);
        // Already gone (dropped by whenFull while in flight, quarantined, acked twice): it was
        // counted where it went, so it is not counted delivered too.
        if (e === undefined) continue;
        store.forget(e);
        store.tombstones.add(seq);
        // In memory now, on disk with the tombstone: both are written by the same batch.
        store.s.totals.deliveredRecords++;
        store.s.totals.deliveredReadings += e.count;
      }
      if (store.tombstones.size >= TOMBSTONE_BATCH) await store.writeTombstones(db);
      else if (store.tombstones.size > 0 || store.notices.deletesPending) this.arm();
      await store.afterRemoval(db, removed.filter(Boolean).length);
      batch.forEach((d, i) => d.resolve(removed[i]!));
    } catch (err) {
      for (const d of batch) d.reject(err);
    }
  }

  private arm(): void {
    if (this.timer !== null) return;
    const store = this.store;
    this.timer = store.clock.setTimeout(() => {
      this.timer = null;
      void this.serial(async () => {
        if (store.db !== null && (store.tombstones.size > 0 || store.notices.deletesPending)) {
          await store.writeTombstones(store.db);
        }
      }).catch((err: unknown) => {
        // Still pending: the next batch takes them.
        store.log.warn({ err: causeText(err) }, 'queue delete write failed');
      });
    }, TOMBSTONE_MS);
  }

  private disarm(): void {
    if (this.timer === null) return;
    this.store.clock.clearTimeout(this.timer);
    this.timer = null;
  }
}
