// The backlog read-ahead (src/queue/read-ahead.ts): one LevelDB iterator answers a drain's next
// pulls, bounded in records and bytes, and what it answers is what the disk would: deleted
// records are gone from it, and a record written below the next seq empties it.

import assert from 'node:assert/strict';
import { ReadAhead } from '../../../src/queue/read-ahead.js';
import { AHEAD_CAP, type Db } from '../../../src/queue/store.js';
import type { SealedQueue } from '../../../src/queue/sealed-queue.js';
import type { SealedRecord } from '../../../src/types.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { waitFor } from '../../helpers/site.js';
import { openedForm } from '../../../src/seal/sealer.js';
import { fixedReadings, queueFixture, type QueueFixture } from '../../helpers/queue.js';

const rec = (seq: number, bytes = 10): SealedRecord => ({
  seq,
  count: 1,
  t0: 0,
  bytes: new Uint8Array(bytes),
});
const seqs = (rs: readonly SealedRecord[] | null): number[] | null => rs?.map((r) => r.seq) ?? null;

describe('queue/ReadAhead', () => {
  it('answers reads inside what it read, and nothing it cannot tell', () => {
    const a = new ReadAhead(4, 1000);
    assert.equal(a.read(1, 2, 10), null, 'empty: nothing to tell');
    a.fill(a.generation, 1, [rec(1), rec(2), rec(4), rec(5), rec(6)], 6);
    // Four kept (its cap): it covers seqs 1..5, where 3 is not stored.
    assert.deepEqual(seqs(a.read(1, 2, 10)), [1, 2]);
    assert.deepEqual(seqs(a.read(3, 2, 10)), [4, 5]);
    assert.equal(a.read(4, 3, 10), null, 'only 4, 5 known of the 3 asked: the disk tells the rest');
    assert.deepEqual(seqs(a.read(4, 3, 5)), [4, 5], 'fewer, when it covers every stored seq');
    assert.equal(a.read(2, 1, 10), null, 'the cursor moved past 2: not answered from here');
    assert.equal(a.read(7, 1, 10), null, 'beyond what it read');
  });

  it('keeps at most its bytes', () => {
    const a = new ReadAhead(100, 25);
    a.fill(a.generation, 1, [rec(1), rec(2), rec(3)], 3);
    assert.deepEqual(seqs(a.read(1, 2, 3)), [1, 2]);
    assert.equal(a.read(3, 1, 3), null, 'record 3 did not fit: not claimed');
  });

  it('leaves out what was deleted, and a fill from before an invalidation is ignored', () => {
    const a = new ReadAhead(10, 1000);
    a.fill(a.generation, 1, [rec(1), rec(2), rec(3)], 3);
    a.drop(2);
    assert.deepEqual(seqs(a.read(1, 5, 3)), [1, 3]);
    const before = a.generation;
    a.invalidate();
    assert.equal(a.read(1, 1, 3), null);
    a.fill(before, 1, [rec(1)], 1);
    assert.equal(a.read(1, 1, 3), null, 'filled by a read that began before the invalidation');
  });
});

describe('queue/SealedQueue read-ahead', () => {
  let fx: QueueFixture;
  beforeEach(async () => {
    fx = await queueFixture();
  });
  afterEach(() => fx.cleanup());

  /** Counts the LevelDB iterators the queue opens. */
  function countIterators(q: SealedQueue): { count: number } {
    const store = (q as unknown as { store: { db: Db } }).store;
    const db = store.db;
    const counter = { count: 0 };
    const iterator = db.iterator.bind(db);
    db.iterator = ((...args: Parameters<Db['iterator']>) => {
      counter.count++;
      return iterator(...args);
    }) as Db['iterator'];
    return counter;
  }

  /** The seqs of every record after `after`, read in 32-record pulls as the uplink does. */
  async function seqsAfter(q: SealedQueue, after: number): Promise<number[]> {
    const out: number[] = [];
    for (let got = await q.read(after, 32); got.length > 0; got = await q.read(out.at(-1)!, 32)) {
      out.push(...got.map((r) => r.seq));
    }
    return out;
  }

  it("answers a drain's pulls from one disk read; what was acked meanwhile is not read again", async () => {
    const q = fx.make();
    await q.start();
    const n = AHEAD_CAP + 40;
    for (let i = 0; i < n; i++) await q.append(fixedReadings(2, 1000 * i));
    const iterators = countIterators(q);
    const first = await q.read(0, 32);
    assert.deepEqual(
      first.map((r) => r.seq),
      Array.from({ length: 32 }, (_, i) => i + 1),
    );
    assert.equal(iterators.count, 1);
    // Acknowledged while the drain reads on (tombstones pending, and written).
    await Promise.all([q.delete(33), q.delete(40)]);
    const second = await q.read(32, 32);
    assert.equal(iterators.count, 1, 'answered from memory');
    assert.deepEqual(
      second.map((r) => r.seq),
      Array.from({ length: 34 }, (_, i) => i + 33).filter((s) => s !== 33 && s !== 40),
    );
    // The same records as the disk holds: each opens to what was appended.
    for (const r of second)
      assert.deepEqual(fx.sealer.open(r).readings, fixedReadings(2, 1000 * (r.seq - 1)));
    // Past what was read ahead: the disk again, and every record is still there.
    assert.deepEqual(
      await seqsAfter(q, 66),
      Array.from({ length: n - 66 }, (_, i) => i + 67),
    );
    assert.ok(iterators.count >= 2 && iterators.count <= 4, `${iterators.count} iterators`);
  });

  it('a record written late below the next seq (write-behind) is read, never hidden by what was read ahead', async () => {
    const clock = new FakeClock();
    let room = 0;
    const q = fx.make({ clock, opened: openedForm, writeBehind: () => room });
    await q.start();
    q.onAppend(() => undefined);
    const n = AHEAD_CAP + 100;
    // No room at the uplink: committed at once.
    for (let i = 0; i < n; i++)
      await q.append(fixedReadings(1, 1000 * i), undefined, clock.monotonic() + 400);
    assert.equal((await q.read(0, 32)).length, 32);
    room = 4;
    const held = await q.append(fixedReadings(1, 1000 * n), undefined, clock.monotonic() + 400);
    assert.equal(held, n + 1);
    assert.equal(q.stats().held, 1);
    // Its PUBACK is late: written now, below the next seq (handed out when it was held).
    await clock.advanceAsync(1000);
    await waitFor(() => q.stats().held === 0, 5000, 'the late record on disk');
    assert.equal(q.stats().records, n + 1);
    assert.deepEqual(
      await seqsAfter(q, 32),
      Array.from({ length: n + 1 - 32 }, (_, i) => i + 33),
    );
  });
});
