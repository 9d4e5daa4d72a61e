// An in-memory RecordSource for the uplink tests: records in seq order, ack deletes. Like the real
// queue's source it may skip seqs: a record marked tampered is quarantined when a read meets it and
// that read comes back short (fewer than `limit` records although more follow).

import type { OpenRecord, Reading, RecordSource } from '../../../src/types.js';

export class MemorySource implements RecordSource {
  readonly records = new Map<number, OpenRecord>();
  readonly acked: number[] = [];
  readonly quarantined: number[] = [];
  /** Records next() has returned, in all. */
  served = 0;
  private readonly tampered = new Set<number>();
  private nextSeq = 1;
  private readonly listeners = new Set<() => void>();

  /** Appends `count` records of `readings` readings each (sensor `s<k>`, value = seq * 1000 + k). */
  append(count: number, readings = 5, t0 = 1_764_380_000_000): void {
    for (let n = 0; n < count; n++) {
      const seq = this.nextSeq++;
      const rs: Reading[] = Array.from({ length: readings }, (_, k) => ({
        sensor: `s${k}`,
        ts: t0 + seq * 10 + k,
        value: seq * 1000 + k,
        quality: 'good',
      }));
      this.records.set(seq, { seq, readings: rs });
    }
    for (const l of this.listeners) l();
  }

  /** The next read that meets `seq` quarantines it instead of returning it. */
  tamper(seq: number): void {
    this.tampered.add(seq);
  }

  get committed(): number {
    return this.nextSeq - 1;
  }

  lastSeq(): number {
    return this.nextSeq - 1;
  }

  next(afterSeq: number, limit: number): Promise<OpenRecord[]> {
    const read: OpenRecord[] = [];
    for (const [seq, rec] of this.records) {
      if (seq <= afterSeq) continue;
      read.push(rec);
      if (read.length >= limit) break;
    }
    const out = read.filter((rec) => !this.tampered.has(rec.seq));
    for (const rec of read) {
      if (!this.tampered.has(rec.seq)) continue;
      this.tampered.delete(rec.seq);
      this.records.delete(rec.seq);
      this.quarantined.push(rec.seq);
    }
    // All of them quarantined: look further, as the queue's source does (empty means nothing there).
    const last = read[read.length - 1];
    if (out.length === 0 && last !== undefined) return this.next(last.seq, limit);
    this.served += out.length;
    return Promise.resolve(out);
  }

  ack(seq: number): Promise<boolean> {
    const had = this.records.delete(seq);
    this.acked.push(seq);
    return Promise.resolve(had);
  }

  onAppend(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
