// The notice book's bounds (src/queue/notices.ts): coalescing, the cap on pending gaps, the cap
// on notices waiting for their PUBACK, and what a failed batch leaves.

import assert from 'node:assert/strict';
import { MAX_PENDING, MAX_QUEUED, NoticeBook, coalesce, readGaps } from '../../../src/queue/notices.js';
import { META_PENDING_GAPS } from '../../../src/queue/keys.js';
import type { GapNotice, SealedRecord } from '../../../src/types.js';

/** A batch that records what was put and deleted. */
function recorder(): {
  put(k: Uint8Array, v: Uint8Array): void;
  del(k: Uint8Array): void;
  puts: Map<string, Uint8Array>;
} {
  const puts = new Map<string, Uint8Array>();
  return {
    puts,
    put: (k, v) => void puts.set(Buffer.from(k).toString('hex'), v),
    del: (k) => void puts.delete(Buffer.from(k).toString('hex')),
  };
}

const seal = (seq: number): SealedRecord => ({ seq, count: 0, t0: 0, bytes: Uint8Array.of(2, 0, 0) });
const dropped = (from: number, to: number, readings = 1): GapNotice => ({
  from,
  to,
  why: 'dropped',
  readings,
});

describe('queue/NoticeBook', () => {
  it('coalesces adjacent gaps of the same why, never gaps of different whys', () => {
    const out = coalesce(
      [dropped(1, 2, 2)],
      [dropped(3, 5, 3), { from: 6, to: 6, why: 'quarantined', readings: 1 }],
    );
    assert.deepEqual(out, [dropped(1, 5, 5), { from: 6, to: 6, why: 'quarantined', readings: 1 }]);
    assert.deepEqual(coalesce([dropped(1, 1)], [{ ...dropped(2, 2), readings: null }]), [
      { ...dropped(1, 2), readings: null },
    ]);
  });

  it(`past ${MAX_PENDING} pending gaps, a new one widens the newest of its why: the list stays bounded`, () => {
    let pending: GapNotice[] = [];
    for (let i = 0; i < MAX_PENDING * 3; i++)
      pending = coalesce(pending, [dropped(10 * i + 1, 10 * i + 2, 2)]);
    assert.equal(pending.length, MAX_PENDING);
    const last = pending.at(-1)!;
    assert.equal(last.to, 10 * (MAX_PENDING * 3 - 1) + 2, 'the newest seqs are still covered');
    const total = pending.reduce((n, g) => n + g.readings!, 0);
    assert.equal(total, MAX_PENDING * 3 * 2, 'no reading count is lost');
  });

  it(`seals at most ${MAX_QUEUED} notices waiting for their ack; the rest stays pending (in the batch's meta)`, () => {
    const book = new NoticeBook();
    book.load([], null, []);
    let seq = 100_000;
    let from = 1;
    let b = recorder();
    for (let round = 0; round < 6; round++) {
      // 200 gaps a batch, never adjacent (so none coalesce): 1200 in all.
      const gaps = Array.from({ length: 200 }, (_, k) => dropped(from + 3 * k, from + 3 * k));
      from += 600;
      b = recorder();
      const t = book.take(b, seq, seal, gaps);
      seq += t.sealed.length;
      book.settle(t, 0);
    }
    assert.equal(book.queuedCount, MAX_QUEUED);
    assert.equal(book.pendingGaps.length, 1200 - MAX_QUEUED);
    assert.equal(
      readGaps(b.puts.get(Buffer.from(META_PENDING_GAPS).toString('hex'))).length,
      1200 - MAX_QUEUED,
    );
    assert.equal(book.due(1e9, true), false, 'nothing more is sealed until notices are acked');
    assert.equal(book.acked(100_000), true);
    assert.equal(book.due(1e9, true), true);
    assert.deepEqual(book.totals, { committed: MAX_QUEUED, delivered: 1, quarantined: 0 });
  });

  it('a failed batch changes nothing but keeps its deletes pending', () => {
    const book = new NoticeBook();
    book.load([seal(7)], { committed: 1, delivered: 0, quarantined: 0 }, []);
    book.acked(7);
    const t = book.take(recorder(), 8, seal, [dropped(1, 1)]);
    book.restore(t);
    assert.equal(
      book.pendingGaps.length,
      0,
      'the gap of a failed batch is not pending: its change did not happen',
    );
    assert.equal(book.deletesPending, true);
    assert.equal(book.queuedCount, 0);
  });
});
