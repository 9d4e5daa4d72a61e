// Stored records read ahead of the uplink's backlog cursor. A drain reads the backlog in pulls of
// a few dozen records; a LevelDB iterator for each pull cost ~10% of a compressed drain's CPU, so
// one disk read takes up to `cap` records (at most `maxBytes` of values) and the pulls that follow
// are answered from here. Bounded, and emptied as the cursor moves past.
//
// Invariant: every stored record with seq in [from, to] is in it (deleted ones are taken out). Only a write of a record below the next seq can break it (a record held in memory by
// write-behind, committed late): that empties the cache, and a read in progress when it happened
// does not fill it (`generation`).

import type { SealedRecord } from '../types.js';

export class ReadAhead {
  /** In seq order; those before `at` were passed by the cursor. */
  private recs: SealedRecord[] = [];
  private at = 0;
  /** Seqs of `recs` deleted since. */
  private readonly gone = new Set<number>();
  private from = 1;
  private to = 0;
  private gen = 0;

  constructor(
    readonly cap: number,
    private readonly maxBytes: number,
  ) {}

  /** Taken before a disk read; `fill` with another generation is ignored. */
  get generation(): number {
    return this.gen;
  }

  /**
   * Records read from disk from `from` on (seq order, deleted ones left out), `last` the last
   * seq the read saw: they are kept, as many as the bounds allow, and the range they cover.
   */
  fill(generation: number, from: number, rows: readonly SealedRecord[], last: number): void {
    if (generation !== this.gen) return;
    let bytes = 0;
    let n = 0;
    let to = last;
    for (const rec of rows) {
      if (n >= this.cap || bytes + rec.bytes.length > this.maxBytes) {
        to = rec.seq - 1;
        break;
      }
      bytes += rec.bytes.length;
      n++;
    }
    this.recs = rows.slice(0, n);
    this.at = 0;
    this.gone.clear();
    this.from = from;
    this.to = to;
  }

  /**
   * Stored records from `from` on, at most `limit`, or null when this cache cannot tell them all:
   * `limit` of them, or every one up to `lastStored` (the highest seq that may be stored).
   */
  read(from: number, limit: number, lastStored: number): SealedRecord[] | null {
    if (from < this.from || from > this.to + 1) return null;
    // The cursor moved past these: they are not read again from here.
    while (this.at < this.recs.length && this.recs[this.at]!.seq < from) {
      this.gone.delete(this.recs[this.at]!.seq);
      this.recs[this.at++] = undefined as unknown as SealedRecord;
    }
    this.from = from;
    const out: SealedRecord[] = [];
    for (let i = this.at; i < this.recs.length && out.length < limit; i++) {
      const rec = this.recs[i]!;
      if (!this.gone.has(rec.seq)) out.push(rec);
    }
    return out.length === limit || this.to >= lastStored ? out : null;
  }

  /** A record is gone from the store (deleted, dropped or quarantined). */
  drop(seq: number): void {
    if (seq >= this.from && seq <= this.to) this.gone.add(seq);
  }

  /** A record was written below the next seq: what was read ahead may lack it. */
  invalidate(): void {
    this.gen++;
    this.recs = [];
    this.at = 0;
    this.gone.clear();
    this.from = 1;
    this.to = 0;
  }
}
