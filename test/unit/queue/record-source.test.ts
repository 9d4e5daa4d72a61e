import assert from 'node:assert/strict';
import { Level } from 'level';
import { QueueRecordSource } from '../../../src/queue/record-source.js';
import { KIND_QUARANTINE, KIND_RECORD, queueKey } from '../../../src/queue/keys.js';
import type { SealedQueue } from '../../../src/queue/sealed-queue.js';
import { fixedReadings, queueFixture, type QueueFixture } from '../../helpers/queue.js';

async function alterOnDisk(dir: string, seq: number, at: (len: number) => number): Promise<void> {
  const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  const v = Uint8Array.from(await db.get(queueKey(KIND_RECORD, seq)));
  v[at(v.length)]! ^= 0x80;
  await db.put(queueKey(KIND_RECORD, seq), v);
  await db.close();
}

describe('queue/QueueRecordSource', () => {
  let fx: QueueFixture;
  let q: SealedQueue | null = null;
  beforeEach(async () => {
    fx = await queueFixture();
  });
  afterEach(async () => {
    await q?.stop();
    q = null;
    await fx.cleanup();
  });

  async function queueWith(counts: number[]): Promise<void> {
    const first = fx.make();
    await first.start();
    for (const n of counts) await first.append(fixedReadings(n));
    await first.stop();
  }

  it('opens records in order and deletes them on ack', async () => {
    await queueWith([2, 3]);
    q = fx.make();
    await q.start();
    const source = new QueueRecordSource(
      q,
      (rec) => fx.sealer.open(rec),
      () => assert.fail('no quarantine'),
    );
    const recs = await source.next(0, 10);
    assert.deepEqual(
      recs.map((r) => [r.seq, r.readings.length]),
      [
        [1, 2],
        [2, 3],
      ],
    );
    assert.deepEqual(recs[1]!.readings, fixedReadings(3));
    await source.ack(1);
    assert.equal(q.stats().records, 1);
    assert.deepEqual(
      (await source.next(0, 10)).map((r) => r.seq),
      [2],
    );
  });

  it('quarantines a record altered on disk, reports it, and skips it', async () => {
    await queueWith([2, 3, 4]);
    await alterOnDisk(fx.dir, 2, (len) => len - 20);
    q = fx.make();
    await q.start();
    const quarantined: number[] = [];
    const source = new QueueRecordSource(
      q,
      (rec) => fx.sealer.open(rec),
      (seq) => quarantined.push(seq),
    );

    const recs = await source.next(0, 10);
    assert.deepEqual(
      recs.map((r) => r.seq),
      [1, 3],
    );
    assert.deepEqual(quarantined, [2]);
    const s = q.stats();
    assert.equal(s.quarantined, 1);
    assert.equal(s.records, 2);
    assert.equal(s.readings, 6);
    // The next read brings the notice that explains seq 2 (its own seq, 4, is the next one).
    const again = await source.next(0, 10);
    assert.deepEqual(
      again.map((r) => r.seq),
      [1, 3, 4],
      'a quarantined record is never returned again',
    );
    assert.deepEqual(again[2]!.notice, { from: 2, to: 2, why: 'quarantined', readings: 3 });
    assert.deepEqual(again[2]!.readings, []);

    const warn = fx.logs.lines.find((l) => l.code === 'EDGEGW_E_QUEUE_TAMPERED');
    assert.ok(warn);
    assert.equal(warn.seq, 2);
    assert.equal(warn.level, 40);
    assert.doesNotMatch(fx.logs.text(), /20\.5|boiler/);

    // The count persists, and the record is kept for forensics outside the record range.
    await q.stop();
    q = null;
    const db = new Level<Uint8Array, Uint8Array>(fx.dir, { keyEncoding: 'view', valueEncoding: 'view' });
    assert.ok((await db.get(queueKey(KIND_QUARANTINE, 2))) !== undefined);
    assert.equal(await db.get(queueKey(KIND_RECORD, 2)), undefined);
    await db.close();
    q = fx.make();
    await q.start();
    assert.equal(q.stats().quarantined, 1);
    assert.equal(q.stats().records, 2);
    assert.equal(q.stats().bytes > 0, true);
  });

  it('looks further when every record it read was quarantined', async () => {
    await queueWith([1, 1, 1, 1]);
    await alterOnDisk(fx.dir, 1, () => 0);
    await alterOnDisk(fx.dir, 2, (len) => len - 1);
    q = fx.make();
    await q.start();
    const quarantined: number[] = [];
    const source = new QueueRecordSource(
      q,
      (rec) => fx.sealer.open(rec),
      (seq) => quarantined.push(seq),
    );
    assert.deepEqual(
      (await source.next(0, 2)).map((r) => r.seq),
      [3, 4],
    );
    assert.deepEqual(quarantined, [1, 2]);
  });
});
