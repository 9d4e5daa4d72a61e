// Records that wait in memory for their PUBACK instead of being written first (write-behind.ts),
// in seq order, with the open form the uplink publishes them from: a record that never left
// memory is never opened again (issue 9, CPU).

import type { OpenRecord, SealedRecord } from '../types.js';
import type { HeadIndex } from './head-index.js';

export interface HeldRecord {
  readonly rec: SealedRecord;
  readonly open: OpenRecord;
  /** Monotonic time its commit must start by, unless its PUBACK came first. */
  readonly startBy: number;
}

export class HeldRecords {
  /** Insertion order is seq order: seqs are handed out in increasing order. */
  private readonly map = new Map<number, HeldRecord>();
  /** Seqs that were held and will never be stored, above the head index's coverage. */
  private readonly holes = new Set<number>();

  get size(): number {
    return this.map.size;
  }

  add(h: HeldRecord): void {
    this.map.set(h.rec.seq, h);
  }

  get(seq: number): HeldRecord | undefined {
    return this.map.get(seq);
  }

  delete(seq: number): boolean {
    return this.map.delete(seq);
  }

  /** The lowest seq held (Infinity when none). */
  lowest(): number {
    for (const seq of this.map.keys()) return seq;
    return Infinity;
  }

  /** The seq of the k-th lowest held record (k from 1; Infinity when fewer are held). */
  nth(k: number): number {
    let i = 0;
    for (const seq of this.map.keys()) if (++i === k) return seq;
    return Infinity;
  }

  /** The earliest commit start among them (Infinity when none). */
  earliest(): number {
    let t = Infinity;
    for (const h of this.map.values()) t = Math.min(t, h.startBy);
    return t;
  }

  /** Held records with seq ≥ from, in seq order. */
  from(from: number): SealedRecord[] {
    const out: SealedRecord[] = [];
    for (const h of this.map.values()) if (h.rec.seq >= from) out.push(h.rec);
    return out;
  }

  /** Held records with seq ≤ upTo, in seq order. */
  through(upTo: number): HeldRecord[] {
    const out: HeldRecord[] = [];
    for (const h of this.map.values()) if (h.rec.seq <= upTo) out.push(h);
    return out;
  }

  values(): IterableIterator<HeldRecord> {
    return this.map.values();
  }

  /** `seq` was held and will never be stored: the head index may cover it once contiguous. */
  unstored(seq: number, head: HeadIndex): void {
    if (seq > head.coveredTo) this.holes.add(seq);
    // Bounded: without them the index only stops growing until it is refilled from disk.
    if (this.holes.size > head.cap) this.holes.clear();
    this.skipHoles(head);
  }

  /** Moves the head index's coverage over the never-stored seqs just above it. */
  skipHoles(head: HeadIndex): void {
    for (let n = head.coveredTo + 1; this.holes.has(n); n++) {
      head.skip(n, n);
      this.holes.delete(n);
    }
  }
}
