// The newest sealed records, kept in memory after their commit so the uplink, which reads each
// live record right after it was appended, gets it without a LevelDB iterator (DESIGN.md §7, idle
// CPU). Bounded: the last `cap` seqs and at most `maxBytes` of values.
//
// Invariant: every stored record with seq ≥ from is in the map (deleted ones are removed from it).

import type { SealedRecord } from '../types.js';

export class RecentRecords {
  private readonly map = new Map<number, SealedRecord>();
  private bytes = 0;
  /** The lowest seq this cache answers for; nothing at or above it is stored without being here. */
  private from: number;

  constructor(
    nextSeq: number,
    private readonly cap: number,
    private readonly maxBytes: number,
  ) {
    this.from = nextSeq;
  }

  /** A record just committed with the next seq. */
  appended(rec: SealedRecord): void {
    this.map.set(rec.seq, rec);
    this.bytes += rec.bytes.length;
    while (this.from <= rec.seq && (rec.seq - this.from >= this.cap || this.bytes > this.maxBytes)) {
      this.drop(this.from);
      this.from++;
    }
  }

  /** A record was committed without being kept here (nobody follows appends): start over after it. */
  skipped(seq: number): void {
    this.map.clear();
    this.bytes = 0;
    this.from = seq + 1;
  }

  /** A record is gone from the store (deleted, dropped or quarantined). */
  drop(seq: number): void {
    const rec = this.map.get(seq);
    if (rec === undefined) return;
    this.map.delete(seq);
    this.bytes -= rec.bytes.length;
  }

  /** Records with seq in [from, nextSeq), oldest first, at most `limit`; null when not all are here. */
  read(from: number, nextSeq: number, limit: number): SealedRecord[] | null {
    if (from < this.from) return null;
    const out: SealedRecord[] = [];
    for (let seq = from; seq < nextSeq && out.length < limit; seq++) {
      const rec = this.map.get(seq);
      if (rec !== undefined) out.push(rec);
    }
    return out;
  }
}
