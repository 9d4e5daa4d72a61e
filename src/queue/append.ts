// Appending a record, with the whenFull policy: reject-new refuses a record that does not fit,
// drop-oldest deletes the oldest records (in a batch of their own, before the append) until it
// fits. A record bigger than the room left beside the quarantine is refused under either policy.

import type { Reading } from '../types.js';
import type { HeadEntry } from './head-index.js';
import type { FullQueueReport } from './full-report.js';
import type { Db, QueueStore } from './store.js';
import { KIND_RECORD, META_FIGURES, META_NEXT_SEQ, causeText, numberValue, queueKey } from './keys.js';

export class Appender {
  constructor(
    private readonly store: QueueStore,
    private readonly full: FullQueueReport,
    private readonly listeners: ReadonlySet<() => void>,
  ) {}

  /** Seals and commits one record; its seq, or null when the full policy refused it. */
  async append(readings: readonly Reading[]): Promise<number | null> {
    const store = this.store;
    const { opts, s } = store;
    const db = store.open();
    const seq = s.nextSeq;
    const rec = opts.seal(seq, readings);
    const key = queueKey(KIND_RECORD, seq);
    const size = key.length + rec.bytes.length;
    const room = opts.maxBytes - store.quarantineBytes;
    if (size > room || (opts.whenFull === 'reject-new' && s.bytes + size > opts.maxBytes)) {
      this.full.dropped(1, rec.count, s);
      return null;
    }
    if (s.bytes + size > opts.maxBytes) await this.dropOldest(db, s.bytes + size - opts.maxBytes);

    const b = db
      .batch()
      .put(key, rec.bytes)
      .put(META_NEXT_SEQ, numberValue(seq + 1))
      .put(META_FIGURES, store.figuresAfter(1, rec.count, size));
    await store.write(b, store.sync);
    s.nextSeq = seq + 1;
    s.records++;
    s.readings += rec.count;
    s.bytes += size;
    store.head.appended({ seq, count: rec.count, t0: rec.t0, size });
    // Kept only for a follower (the uplink): without one, holding records would only feed the GC.
    if (this.listeners.size > 0) store.recent.appended(rec);
    else store.recent.skipped(seq);
    store.refreshHeadFigures();
    for (const l of this.listeners) {
      try {
        l();
      } catch (err) {
        // The record is committed whatever a listener does; say so rather than fail the append.
        opts.log.error({ err: causeText(err) }, 'queue append listener failed');
      }
    }
    return seq;
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
    await b
      .put(META_FIGURES, store.figuresAfter(-victims.length, -readings, -bytes))
      .write({ sync: store.sync });
    for (const e of victims) store.forget(e);
    this.full.dropped(victims.length, readings, store.s);
    await store.afterRemoval(db, victims.length);
  }
}
