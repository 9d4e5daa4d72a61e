import assert from 'node:assert/strict';
import { RecentRecords } from '../../../src/queue/recent.js';
import { Tombstones } from '../../../src/queue/tombstones.js';
import { seqOfKey } from '../../../src/queue/keys.js';
import type { SealedRecord } from '../../../src/types.js';
import { fixedReadings, queueFixture, type QueueFixture } from '../../helpers/queue.js';

const rec = (seq: number, size = 10): SealedRecord => ({
  seq,
  count: 1,
  t0: seq,
  bytes: new Uint8Array(size),
});

describe('queue/RecentRecords', () => {
  it('answers for the last `cap` seqs only, skipping dropped ones', () => {
    const r = new RecentRecords(1, 4, 1000);
    for (let seq = 1; seq <= 6; seq++) r.appended(rec(seq));
    assert.equal(r.read(2, 7, 10), null, 'seq 2 was evicted: the caller must read the disk');
    r.drop(4);
    assert.deepEqual(
      r.read(3, 7, 10)?.map((x) => x.seq),
      [3, 5, 6],
    );
    assert.deepEqual(
      r.read(3, 7, 2)?.map((x) => x.seq),
      [3, 5],
    );
  });

  it('answers for nothing before a record it skipped', () => {
    const r = new RecentRecords(1, 4, 1000);
    r.appended(rec(1));
    r.skipped(2);
    r.appended(rec(3));
    assert.equal(r.read(1, 4, 10), null);
    assert.equal(r.read(2, 4, 10), null);
    assert.deepEqual(
      r.read(3, 4, 10)?.map((x) => x.seq),
      [3],
    );
  });

  it('evicts the oldest to stay within its byte budget', () => {
    const r = new RecentRecords(1, 100, 25);
    for (let seq = 1; seq <= 3; seq++) r.appended(rec(seq));
    assert.equal(r.read(1, 4, 10), null);
    assert.deepEqual(
      r.read(2, 4, 10)?.map((x) => x.seq),
      [2, 3],
    );
  });
});

describe('queue/Tombstones', () => {
  it('hands every pending delete to one batch, and takes them back if the write fails', () => {
    const t = new Tombstones();
    t.add(3);
    t.add(5);
    const keys: number[] = [];
    const taken = t.take({ del: (k: Uint8Array) => keys.push(seqOfKey(k)) });
    assert.deepEqual(keys, [3, 5]);
    assert.equal(t.size, 0);
    assert.ok(t.has(3), 'still deleted for readers until written');
    t.restore(taken);
    assert.equal(t.size, 2);
    t.settle(t.take({ del: () => undefined }));
    assert.equal(t.has(3) || t.has(5), false);
  });

  it('counts only the deletes a read from a seq must step over (also those in a batch being written)', () => {
    const t = new Tombstones();
    for (let seq = 1; seq <= 1000; seq++) t.add(seq); // an acked backlog, below the reader
    t.add(5000);
    t.add(5002);
    assert.equal(t.countFrom(1001), 2, 'a backlog read from 1001 steps over two, not 1002');
    t.take({ del: () => undefined }); // written now, not yet settled: still on disk for readers
    assert.equal(t.countFrom(5001), 1);
    assert.equal(t.countFrom(1), 1002);
  });
});

describe('queue/SealedQueue deletes and live reads', () => {
  let fx: QueueFixture;
  beforeEach(async () => {
    fx = await queueFixture();
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  it('never reads a deleted record again, from memory or from disk, before or after a restart', async () => {
    const q = fx.make();
    await q.start();
    q.onAppend(() => undefined); // a follower: live records are kept in memory
    for (let i = 0; i < 200; i++) await q.append(fixedReadings(2, 1000 * i));
    // Live records (from memory) and old ones (from disk, past tombstones not written yet).
    await Promise.all([q.delete(198), q.delete(10), q.delete(12)]);
    const seqs = (rs: SealedRecord[]): number[] => rs.map((r) => r.seq);
    assert.deepEqual(seqs(await q.read(196, 10)), [197, 199, 200]);
    const old = seqs(await q.read(8, 20));
    assert.equal(old.length, 20, 'the limit is met past deleted records');
    assert.deepEqual(old.slice(0, 4), [9, 11, 13, 14]);
    const opened = fx.sealer.open((await q.read(196, 1))[0]!);
    assert.equal(opened.readings.length, 2, 'a record served from memory opens like one from disk');
    assert.equal(q.stats().records, 197);
    await q.stop();

    const again = fx.make();
    await again.start();
    assert.equal(again.stats().records, 197);
    assert.deepEqual(seqs(await again.read(8, 4)), [9, 11, 13, 14]);
    assert.deepEqual(seqs(await again.read(196, 10)), [197, 199, 200]);
  });
});
