// Acknowledged records whose deletion is applied in memory but not yet written. A delete after a
// PUBACK need not be durable at once: losing it only means sending the record again, which
// at-least-once allows (DESIGN.md §2.2). So deletes ride along in the next batch the queue writes
// anyway (normally the next append, which comes every flush interval while sensors run), or in a
// batch of their own after TOMBSTONE_MS, at stop, or once TOMBSTONE_BATCH are waiting. This halves
// the LevelDB writes of a live gateway (DESIGN.md §7, idle CPU).
//
// Every batch that writes the stored figures takes all pending deletes with it, so the figures on
// disk always match the records on disk, whenever the process dies.

import { KIND_RECORD, queueKey } from './keys.js';

export const TOMBSTONE_MS = 1000;
export const TOMBSTONE_BATCH = 1024;

interface Deletable {
  del(key: Uint8Array): unknown;
}

export class Tombstones {
  private pending: number[] = [];
  private readonly set = new Set<number>();

  get size(): number {
    return this.pending.length;
  }

  /** Deleted seqs not yet written (pending, or in a batch being written). */
  pendingSeqs(): number[] {
    return [...this.set];
  }

  has(seq: number): boolean {
    return this.set.has(seq);
  }

  /**
   * Deleted-but-still-stored seqs at or above `seq`: what a read from `seq` must step over. Acks
   * are mostly below a reader's position, so this is usually far fewer than all of them.
   */
  countFrom(seq: number): number {
    let n = 0;
    for (const s of this.set) if (s >= seq) n++;
    return n;
  }

  add(seq: number): void {
    this.pending.push(seq);
    this.set.add(seq);
  }

  /** Puts every pending delete into `b`; settle() or restore() the returned seqs after the write. */
  take(b: Deletable): number[] {
    const taken = this.pending;
    this.pending = [];
    for (const seq of taken) b.del(queueKey(KIND_RECORD, seq));
    return taken;
  }

  /** The batch holding `taken` was written. */
  settle(taken: readonly number[]): void {
    for (const seq of taken) this.set.delete(seq);
  }

  /** The batch holding `taken` failed: they are pending again. */
  restore(taken: readonly number[]): void {
    this.pending = taken.concat(this.pending);
  }
}
