// Acks in drain-sized batches (issue 8: a compressed drain acknowledges ~20,000 records a second).
// Acks beyond the in-memory head index must cost one range read, not a disk read each, and a
// large batch of acks must not hold back the commits queued behind it: before, one step applied
// every pending ack with a LevelDB get per record past the index, and a live commit waited
// behind it for up to 20 s.

import assert from 'node:assert/strict';
import { HEAD_CAP } from '../../../src/queue/store.js';
import { DELETE_STEP } from '../../../src/queue/deletes.js';
import type { SealedQueue } from '../../../src/queue/sealed-queue.js';
import { fixedReadings, queueFixture, type QueueFixture } from '../../helpers/queue.js';

interface Spied {
  store: { db: { get: (...args: unknown[]) => Promise<unknown> } | null };
}

/** Counts the point reads the queue makes on its LevelDB from now on. */
function countGets(q: SealedQueue): { count: number } {
  const db = (q as unknown as Spied).store.db;
  assert.ok(db !== null, 'the queue is open');
  const counter = { count: 0 };
  const get = db.get.bind(db);
  db.get = (...args: unknown[]) => {
    counter.count++;
    return get(...args);
  };
  return counter;
}

describe('queue: acks in drain-sized batches', function () {
  this.timeout(60_000);
  let fx: QueueFixture;
  const RECORDS = HEAD_CAP * 3;
  beforeEach(async () => {
    fx = await queueFixture();
  });
  afterEach(() => fx.cleanup());

  it('acks far past the head index read ranges, not each record, and let a commit in between', async () => {
    const fill = fx.make({ durability: 'os' });
    await fill.start();
    for (let i = 0; i < RECORDS; i++) await fill.append(fixedReadings(2));
    await fill.stop();
    // Reopened: the head index holds the oldest HEAD_CAP records only.
    const q = fx.make({ durability: 'os' });
    await q.start();
    const gets = countGets(q);
    const order: string[] = [];
    const seqs = Array.from({ length: RECORDS }, (_, i) => i + 1);
    const acked = Promise.all(seqs.map((s) => q.delete(s))).then((removed) => {
      order.push('acks');
      return removed;
    });
    const committed = q.append(fixedReadings(2)).then((seq) => {
      order.push('commit');
      return seq;
    });
    const [removed, seq] = await Promise.all([acked, committed]);
    assert.ok(removed.every(Boolean), 'every ack removed its record');
    assert.equal(seq, RECORDS + 1);
    assert.ok(RECORDS > DELETE_STEP * 2);
    assert.deepEqual(order, ['commit', 'acks'], 'the commit went between ack steps');
    assert.ok(gets.count <= 2, `${gets.count} point reads for ${RECORDS} acks`);
    assert.equal(q.stats().records, 1);
    assert.equal(q.stats().firstSeq, RECORDS + 1);
  });
});
