// An in-memory RecordSource for the uplink tests: records in seq order, ack deletes.

import type { OpenRecord, Reading, RecordSource } from '../../../src/types.js';

export class MemorySource implements RecordSource {
  readonly records = new Map<number, OpenRecord>();
  readonly acked: number[] = [];
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

  get committed(): number {
    return this.nextSeq - 1;
  }

  lastSeq(): number {
    return this.nextSeq - 1;
  }

  next(afterSeq: number, limit: number): Promise<OpenRecord[]> {
    const out: OpenRecord[] = [];
    for (const [seq, rec] of this.records) {
      if (seq <= afterSeq) continue;
      out.push(rec);
      if (out.length >= limit) break;
    }
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
