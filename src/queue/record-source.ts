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
      const clock = this.queue.clockRanges;
      for (const rec of sealed) {
        // A record held in memory (write-behind) is published from what was sealed: never opened.
        let opened: OpenRecord | undefined = this.queue.heldOpen(rec.seq);
        try {
          opened ??= this.open(rec);
        } catch (err) {
          if (!(err instanceof TamperedRecordError)) throw err;
          await this.queue.quarantine(rec.seq, 'authentication failed');
          this.onQuarantine(rec.seq);
          continue;
        }
        // Its times are corrected here, before it is published; held back while they cannot be yet.
        const corrected = clock.correct(opened);
        if (corrected === null) return out;
        out.push(corrected);
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

  /**
   * Held records (clock-ranges.ts) do not exist yet for the uplink: its cursors end before them,
   * and the release or the sync tells it (onAppend) to read on.
   */
  lastSeq(): number {
    const last = this.queue.nextSeq() - 1;
    const held = this.queue.clockRanges.firstHeld();
    return held === null ? last : Math.min(last, held - 1);
  }
}
