// The uplink's view of the queue: opened records in seq order. A record that fails to open is
// quarantined (the queue logs it, with its seq only), reported, and skipped; it is never returned.

import type { OpenRecord, RecordSource, SealedRecord } from '../types.js';
import { TamperedRecordError } from '../seal/sealer.js';
import type { SealedQueue } from './sealed-queue.js';

export class QueueRecordSource implements RecordSource {
  constructor(
    private readonly queue: SealedQueue,
    private readonly open: (rec: SealedRecord) => OpenRecord,
    private readonly onQuarantine: (seq: number) => void,
  ) {}

  async next(afterSeq: number, limit: number): Promise<OpenRecord[]> {
    let after = afterSeq;
    for (;;) {
      const sealed = await this.queue.read(after, limit);
      const out: OpenRecord[] = [];
      for (const rec of sealed) {
        try {
          out.push(this.open(rec));
        } catch (err) {
          if (!(err instanceof TamperedRecordError)) throw err;
          await this.queue.quarantine(rec.seq, 'authentication failed');
          this.onQuarantine(rec.seq);
        }
      }
      // All of them were quarantined: look further rather than report "nothing there yet".
      const last = sealed[sealed.length - 1];
      if (out.length > 0 || last === undefined) return out;
      after = last.seq;
    }
  }

  ack(seq: number): Promise<boolean> {
    return this.queue.delete(seq);
  }

  onAppend(listener: () => void): () => void {
    return this.queue.onAppend(listener);
  }

  lastSeq(): number {
    return this.queue.stats().nextSeq - 1;
  }
}
