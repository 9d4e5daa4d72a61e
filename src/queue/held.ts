// Records that wait in memory for their PUBACK instead of being written first (write-behind.ts),
// in seq order, with the open form the uplink publishes them from: a record that never left
// memory is never opened again (issue 9, CPU).

import type { OpenRecord, SealedRecord } from '../types.js';

export interface HeldRecord {
  readonly rec: SealedRecord;
  readonly open: OpenRecord;
  /** Monotonic time its commit must start by, unless its PUBACK came first. */
  readonly startBy: number;
}

export class HeldRecords {
  /** Insertion order is seq order: seqs are handed out in increasing order. */
  private readonly map = new Map<number, HeldRecord>();

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
}
