import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { Level } from 'level';
import { EdgegwError, Exit } from '../../../src/errors.js';
import { KIND_QUARANTINE, KIND_RECORD, queueKey } from '../../../src/queue/keys.js';
import { fixedReadings, queueFixture, sealedAtStop, type QueueFixture } from '../../helpers/queue.js';

describe('queue/SealedQueue', () => {
  let fx: QueueFixture;
  beforeEach(async () => {
    fx = await queueFixture();
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  it('starts empty at seq 1 in a 0700 folder it creates', async () => {
    const q = fx.make();
    await q.start();
    assert.deepEqual(q.stats(), {
      records: 0,
      readings: 0,
      bytes: 0,
      firstSeq: null,
      nextSeq: 1,
      oldestTs: null,
      quarantined: 0,
      droppedReadings: 0,
      droppedRecords: 0,
      totals: {
        committedRecords: 0,
        committedReadings: 0,
        deliveredRecords: 0,
        deliveredReadings: 0,
        droppedRecords: 0,
        droppedReadings: 0,
        quarantinedRecords: 0,
        quarantinedReadings: 0,
      },
      lostReadings: 0,
      notices: 0,
      pendingGaps: 0,
      noticeTotals: { committed: 0, delivered: 0, quarantined: 0 },
      held: 0,
    });
    assert.equal((await stat(fx.dir)).mode & 0o777, 0o700);
  });

  it('appends, reads in order after a seq, and deletes', async () => {
    const q = fx.make();
    await q.start();
    let appended = 0;
    const off = q.onAppend(() => appended++);
    assert.equal(await q.append(fixedReadings(3, 1000)), 1);
    assert.equal(await q.append(fixedReadings(2, 2000)), 2);
    assert.equal(await q.append(fixedReadings(4, 3000)), 3);
    off();
    await q.append(fixedReadings(1, 4000));
    assert.equal(appended, 3, 'listener called per append until unsubscribed');

    const s = q.stats();
    assert.equal(s.records, 4);
    assert.equal(s.readings, 10);
    assert.equal(s.firstSeq, 1);
    assert.equal(s.oldestTs, 1000);
    assert.equal(s.nextSeq, 5);

    const after1 = await q.read(1, 2);
    assert.deepEqual(
      after1.map((r) => [r.seq, r.count, r.t0]),
      [
        [2, 2, 2000],
        [3, 4, 3000],
      ],
    );
    assert.deepEqual(fx.sealer.open(after1[1]!).readings, fixedReadings(4, 3000));

    await Promise.all([q.delete(1), q.delete(3), q.delete(3), q.delete(99)]);
    const t = q.stats();
    assert.equal(t.records, 2);
    assert.equal(t.readings, 3);
    assert.equal(t.firstSeq, 2);
    assert.equal(t.oldestTs, 2000);
    assert.deepEqual(
      (await q.read(0, 10)).map((r) => r.seq),
      [2, 4],
    );
    assert.deepEqual(await q.read(4, 10), []);
  });

  it('keeps records and continues seq across restarts, even after deleting everything', async () => {
    let q = fx.make();
    await q.start();
    for (let i = 0; i < 3; i++) await q.append(fixedReadings(2));
    const bytes = q.stats().bytes;
    await q.stop();

    q = fx.make();
    await q.start();
    assert.equal(q.stats().records, 3);
    assert.equal(q.stats().readings, 6);
    assert.equal(q.stats().bytes, bytes);
    assert.equal(q.stats().nextSeq, 4);
    for (const r of await q.read(0, 10)) await q.delete(r.seq);
    assert.equal(q.stats().records, 0);
    assert.equal(q.stats().firstSeq, null);
    await q.stop();

    q = fx.make({ durability: 'os' });
    await q.start();
    assert.equal(q.stats().records, 0);
    assert.equal(q.stats().nextSeq, 4);
    assert.equal(await q.append(fixedReadings(1)), 4);
  });

  it('stop() waits for appends still pending', async () => {
    let q = fx.make();
    await q.start();
    const pending = [1, 2, 3, 4, 5].map(() => q.append(fixedReadings(2)));
    await q.stop();
    assert.deepEqual(await Promise.all(pending), [1, 2, 3, 4, 5]);
    q = fx.make();
    await q.start();
    assert.equal(q.stats().records, 5);
  });

  it('drop-oldest makes room by dropping the oldest records, counting and logging them', async () => {
    const probe = fx.make();
    await probe.start();
    await probe.append(fixedReadings(5));
    const size = probe.stats().bytes;
    for (const r of await probe.read(0, 1)) await probe.delete(r.seq);

    const q = probe;
    await q.stop();
    const full = fx.make({ maxBytes: size * 4 + size - 1, whenFull: 'drop-oldest' });
    await full.start();
    for (let i = 0; i < 7; i++) await full.append(fixedReadings(5));
    const s = full.stats();
    assert.equal(s.records, 4);
    assert.equal(s.droppedRecords, 3);
    assert.equal(s.droppedReadings, 15);
    assert.equal(s.firstSeq, 5);
    // Seq 7 is the notice explaining seq 2 (sealed with the record after the first drop).
    assert.equal(s.nextSeq, 10);
    assert.ok(s.bytes <= size * 5 - 1);
    assert.deepEqual(
      (await full.read(0, 10)).map((r) => r.seq),
      [5, 6, 7, 8, 9],
    );
    const summaries = () => fx.logs.lines.filter((l) => l.msg === 'queue full: records dropped');
    const warn = summaries()[0];
    assert.ok(warn, 'a full-queue warning was logged');
    assert.equal(warn.code, 'EDGEGW_E_QUEUE_FULL');
    assert.equal(warn.level, 40);
    assert.equal(warn.droppedRecords, 1, 'the first drop is logged at once');
    await full.stop();
    // Later drops within the log interval are summed into one line at stop.
    const last = summaries().at(-1)!;
    assert.equal(last.totalDroppedRecords, 3);
    assert.equal(last.totalDroppedReadings, 15);
    // The rate-limited summary is the `queue-full` audit entry, and the only one.
    const fullAudits = fx.logs.lines.filter((l) => l.audit !== undefined);
    assert.deepEqual(fullAudits, summaries());
    assert.equal(fullAudits.length, 2, 'the first at once, the rest summed at stop');
    for (const a of fullAudits) assert.equal(a.audit, 'queue-full');
    // Every seq given up is in exactly one range line, adjacent ranges coalesced.
    const ranges = fx.logs.lines
      .filter((l) => l.msg === 'queue gave up records')
      .map((l) => [l.code, l.seqFrom, l.seqTo, l.records, l.readingCount, l.reason]);
    assert.deepEqual(ranges, [
      ['EDGEGW_E_QUEUE_FULL', 2, 2, 1, 5, 'whenFull'],
      ['EDGEGW_E_QUEUE_FULL', 3, 4, 2, 10, 'whenFull'],
    ]);
    assert.deepEqual(s.totals, {
      committedRecords: 8,
      committedReadings: 40,
      deliveredRecords: 1,
      deliveredReadings: 5,
      droppedRecords: 3,
      droppedReadings: 15,
      quarantinedRecords: 0,
      quarantinedReadings: 0,
    });
    assert.doesNotMatch(fx.logs.text(), /20\.5/, 'no values in the log');
  });

  it('setLimits() (a reload) applies a new maxBytes and whenFull from the next append', async () => {
    // Started small: LevelDB's write buffer and the spare file are sized at open (disk.ts).
    const q = fx.make({ maxBytes: 1024 * 1024, minFreeBytes: 0 });
    await q.start();
    await q.append(fixedReadings(3));
    const size = q.stats().bytes;
    await q.append(fixedReadings(3));
    await q.append(fixedReadings(3));
    await q.setLimits({ maxBytes: size * 3, whenFull: 'reject-new', minFreeBytes: 0 });
    assert.equal(await q.append(fixedReadings(3)), null, 'full under the new budget: refused');
    await q.setLimits({ maxBytes: size * 2, whenFull: 'drop-oldest', minFreeBytes: 0 });
    assert.equal(await q.append(fixedReadings(3)), 4, 'the refused record took no seq');
    const s = q.stats();
    assert.ok(s.bytes <= size * 2, 'the smaller budget holds');
    // Seq 5: the notice explaining the seqs the smaller budget dropped.
    assert.deepEqual(
      (await q.read(0, 10)).map((r) => r.seq),
      [3, 4, 5],
    );
    await q.stop(); // flushes the range lines
    const dropped = fx.logs.lines.filter((l) => l.msg === 'queue gave up records');
    assert.deepEqual(
      dropped.map((l) => [l.seqFrom, l.seqTo, l.reason]),
      [[1, 2, 'whenFull']],
    );
  });

  it('reject-new refuses new records when full, without using a seq', async () => {
    const probe = fx.make();
    await probe.start();
    await probe.append(fixedReadings(3));
    const size = probe.stats().bytes;
    await probe.stop();

    const q = fx.make({ maxBytes: size * 3, whenFull: 'reject-new' });
    await q.start();
    assert.equal(q.stats().records, 1);
    assert.equal(await q.append(fixedReadings(3)), 2);
    assert.equal(await q.append(fixedReadings(3)), 3);
    assert.equal(await q.append(fixedReadings(3)), null);
    assert.equal(await q.append(fixedReadings(3)), null);
    const s = q.stats();
    assert.equal(s.records, 3);
    assert.equal(s.droppedRecords, 2);
    assert.equal(s.droppedReadings, 6);
    assert.equal(s.nextSeq, 4);
    assert.equal(s.bytes, size * 3);
    await q.delete(1);
    assert.equal(await q.append(fixedReadings(3)), 4, 'no gap: a refused record took no seq');
  });

  it('refuses a record larger than the whole budget under either policy', async () => {
    const q = fx.make({ maxBytes: 100 });
    await q.start();
    assert.equal(await q.append(fixedReadings(200)), null);
    assert.equal(q.stats().droppedReadings, 200);
    assert.equal(q.stats().records, 0);
  });

  it('refuses a database another holder has open (exit 69)', async () => {
    const a = fx.make();
    await a.start();
    const b = fx.make();
    await assert.rejects(b.start(), (err: unknown) => {
      assert.ok(err instanceof EdgegwError);
      assert.equal(err.code, 'EDGEGW_E_QUEUE_OPEN');
      assert.equal(err.exitCode, Exit.UNAVAILABLE);
      assert.equal(
        err.message,
        `queue at ${fx.dir} is in use — is the daemon running? Stop it or use \`edgegw status\``,
      );
      return true;
    });
  });

  it('verify() reports records whose values were swapped in LevelDB, without quarantining', async () => {
    let q = fx.make();
    await q.start();
    for (let i = 0; i < 4; i++) await q.append(fixedReadings(2 + i));
    await q.stop();

    const db = new Level<Uint8Array, Uint8Array>(fx.dir, { keyEncoding: 'view', valueEncoding: 'view' });
    const v2 = await db.get(queueKey(KIND_RECORD, 2));
    const v3 = await db.get(queueKey(KIND_RECORD, 3));
    await db.batch().put(queueKey(KIND_RECORD, 2), v3).put(queueKey(KIND_RECORD, 3), v2).write();
    await db.close();

    q = fx.make();
    await q.start();
    assert.deepEqual(await q.verify((rec) => fx.sealer.open(rec)), { ok: 2, tampered: [2, 3] });
    assert.equal(q.stats().records, 4);
    assert.equal(q.stats().quarantined, 0);
  });

  it('keeps quarantined records within their budget, and its figures match a fresh start', async () => {
    const probe = fx.make();
    await probe.start();
    await probe.append(fixedReadings(4));
    const size = probe.stats().bytes;
    await probe.stop();

    // maxBytes / 16 holds one quarantined record, not two.
    const q = fx.make({ maxBytes: size * 16 + size });
    await q.start();
    for (let i = 0; i < 5; i++) await q.append(fixedReadings(4));
    await q.quarantine(2, 'test');
    await q.quarantine(3, 'test');
    await q.quarantine(3, 'again: already gone');
    await q.quarantine(99, 'never there');
    const before = q.stats();
    assert.equal(before.quarantined, 2);
    assert.equal(before.records, 4);
    assert.equal(before.bytes, size * 5, '4 records and the newest quarantined one');
    assert.equal(before.firstSeq, 1);
    await q.stop();

    const db = new Level<Uint8Array, Uint8Array>(fx.dir, { keyEncoding: 'view', valueEncoding: 'view' });
    assert.equal(await db.get(queueKey(KIND_QUARANTINE, 2)), undefined, 'the oldest was evicted');
    assert.notEqual(await db.get(queueKey(KIND_QUARANTINE, 3)), undefined);
    await db.close();

    const again = fx.make({ maxBytes: size * 16 + size });
    await again.start();
    assert.deepEqual(again.stats(), sealedAtStop(before));
  });

  it('reads fast after 100k deletes (seeks past the head; compacts the acked range)', async function () {
    this.timeout(120_000);
    const q = fx.make({ durability: 'os' });
    await q.start();
    const total = 100_010;
    for (let base = 0; base < total; base += 1000) {
      const n = Math.min(1000, total - base);
      await Promise.all(Array.from({ length: n }, () => q.append(fixedReadings(1))));
    }
    for (let seq = 1; seq <= 100_000; seq += 1000) {
      await Promise.all(Array.from({ length: 1000 }, (_, i) => q.delete(seq + i)));
    }
    const s = q.stats();
    assert.equal(s.records, 10);
    assert.equal(s.firstSeq, 100_001);
    // From the start of the range: the read seeks past the tombstones to the head.
    for (let i = 0; i < 200; i++) {
      const recs = await q.read(0, 1);
      assert.equal(recs[0]?.seq, 100_001);
    }
    await q.stop();
    const again = fx.make();
    await again.start();
    assert.equal(again.stats().firstSeq, 100_001);
    assert.equal(again.stats().nextSeq, 100_011);
  });
});
