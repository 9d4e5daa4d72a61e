// Issue 6, break 9 and the queue as the one owner of its counters: a record dropped by
// drop-oldest while in flight is not counted delivered when its PUBACK comes later, and the
// lifetime totals balance (committed = delivered + dropped + quarantined + queued).

import assert from 'node:assert/strict';
import { QueueRecordSource } from '../../../src/queue/record-source.js';
import type { QueueStats } from '../../../src/queue/sealed-queue.js';
import { StatusModel } from '../../../src/status/model.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { fixedReadings, queueFixture, type QueueFixture } from '../../helpers/queue.js';

function assertBalanced(s: QueueStats): void {
  const t = s.totals;
  assert.equal(t.committedRecords, t.deliveredRecords + t.droppedRecords + t.quarantinedRecords + s.records);
  assert.equal(
    t.committedReadings,
    t.deliveredReadings + t.droppedReadings + t.quarantinedReadings + s.readings,
  );
}

describe('queue/SealedQueue totals', () => {
  let fx: QueueFixture;
  beforeEach(async () => {
    fx = await queueFixture();
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  it('does not count delivered a record drop-oldest dropped while it was in flight (break 9)', async () => {
    const probe = fx.make();
    await probe.start();
    await probe.append(fixedReadings(5));
    const size = probe.stats().bytes;
    await probe.stop();

    const q = fx.make({ maxBytes: size * 4 });
    await q.start();
    const source = new QueueRecordSource(
      q,
      (rec) => fx.sealer.open(rec),
      () => undefined,
    );
    for (let i = 0; i < 3; i++) await q.append(fixedReadings(5));
    // Seqs 1..4 are "in flight" (read by the uplink, not yet acknowledged)...
    const inFlight = (await source.next(0, 10)).map((r) => r.seq);
    assert.deepEqual(inFlight, [1, 2, 3, 4]);
    // ...when two more appends make drop-oldest drop 2 and 3 (1 is the probe's: dropped first).
    await q.append(fixedReadings(5));
    await q.append(fixedReadings(5));
    const dropped = q.stats().totals.droppedRecords;
    assert.equal(dropped, 2);
    // The PUBACKs arrive: only the records still queued count as delivered.
    const kept = await Promise.all(inFlight.map((seq) => source.ack(seq)));
    assert.deepEqual(kept, [false, false, true, true]);
    assert.equal(await source.ack(3), false, 'a second ack of the same record counts nothing');
    const s = q.stats();
    assert.equal(s.totals.deliveredRecords, 2);
    assert.equal(s.totals.deliveredReadings, 10);
    assertBalanced(s);
    assert.equal(s.records, 2);
  });

  it('status counters come from the queue, since start, with readings never kept counted dropped', async () => {
    const probe = fx.make();
    await probe.start();
    await probe.append(fixedReadings(3));
    const size = probe.stats().bytes;
    await probe.append(fixedReadings(3));
    await probe.delete(1);
    await probe.stop();

    // Figures from before this start are not counted since start.
    const q = fx.make({ maxBytes: size * 3, whenFull: 'reject-new' });
    await q.start();
    const clock = new FakeClock();
    const model = new StatusModel({
      gateway: 'gw',
      version: 'test',
      clock,
      uplink: () => ({ state: 'offline', broker: '', since: 0, inflight: 0, lastError: null }),
      queue: () => q.stats(),
      queueCounters: () => q.sinceStart(),
    });
    await q.append(fixedReadings(3));
    await q.append(fixedReadings(3));
    assert.equal(await q.append(fixedReadings(3)), null, 'refused: reject-new');
    await q.delete(2);
    await q.quarantine(3, 'test');
    const c = model.snapshot().counters;
    assert.equal(c.committed, 6);
    assert.equal(c.written, 6, 'without write-behind every commit is a write');
    assert.equal(c.delivered, 3);
    assert.equal(c.dropped, 3, 'the refused readings');
    assert.equal(c.quarantined, 1);
    const s = q.stats();
    assert.equal(s.lostReadings, 3);
    assert.deepEqual(s.totals, {
      committedRecords: 4,
      committedReadings: 12,
      deliveredRecords: 2,
      deliveredReadings: 6,
      droppedRecords: 0,
      droppedReadings: 0,
      quarantinedRecords: 1,
      quarantinedReadings: 3,
    });
    assertBalanced(s);
  });

  it('derives the totals of a queue written before they were kept, and balances them', async () => {
    const q = fx.make();
    await q.start();
    for (let i = 0; i < 5; i++) await q.append(fixedReadings(2));
    await q.quarantine(2, 'test');
    await q.stop();
    const { Level } = await import('level');
    const { META_TOTALS } = await import('../../../src/queue/keys.js');
    const db = new Level<Uint8Array, Uint8Array>(fx.dir, { keyEncoding: 'view', valueEncoding: 'view' });
    await db.del(META_TOTALS);
    await db.close();
    const again = fx.make();
    await again.start();
    const s = again.stats();
    assert.equal(s.totals.committedRecords, 5);
    assert.equal(s.totals.quarantinedRecords, 1);
    assertBalanced(s);
  });
});
