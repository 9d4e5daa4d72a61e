import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Level } from 'level';
import {
  KIND_QUARANTINE,
  KIND_RECORD,
  META_FIGURES,
  META_TOTALS,
  QUARANTINE_END,
  RECORD_END,
  figuresValue,
  queueKey,
  readFigures,
  seqOfKey,
  toRecord,
  type StoredFigures,
} from '../../../src/queue/keys.js';
import { readTotals, type QueueTotals } from '../../../src/queue/totals.js';
import { fixedReadings, queueFixture, sealedAtStop, type QueueFixture } from '../../helpers/queue.js';

/** The figures counted the slow way, from every stored record. */
async function scan(
  dir: string,
): Promise<StoredFigures & { stored: StoredFigures | null; totals: QueueTotals | null }> {
  const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  try {
    const f = { records: 0, readings: 0, recordBytes: 0, quarantineBytes: 0 };
    for await (const [k, v] of db.iterator({ gte: queueKey(KIND_RECORD, 0), lt: RECORD_END })) {
      f.records++;
      f.readings += toRecord(seqOfKey(k), v).count;
      f.recordBytes += k.length + v.length;
    }
    for await (const [k, v] of db.iterator({ gte: queueKey(KIND_QUARANTINE, 0), lt: QUARANTINE_END })) {
      f.quarantineBytes += k.length + v.length;
    }
    return {
      ...f,
      stored: readFigures(await db.get(META_FIGURES)),
      totals: readTotals(await db.get(META_TOTALS)),
    };
  } finally {
    await db.close();
  }
}

async function setFigures(dir: string, f: StoredFigures | null): Promise<void> {
  const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  if (f === null) await db.del(META_FIGURES);
  else await db.put(META_FIGURES, figuresValue(f));
  await db.close();
}

describe('queue/SealedQueue stored figures', () => {
  let fx: QueueFixture;
  beforeEach(async () => {
    fx = await queueFixture();
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  it('keeps the figures exact through appends, deletes, drops and quarantine, and across a reopen', async () => {
    const q = fx.make({ maxBytes: 4 * 1024 });
    await q.start();
    for (let i = 0; i < 200; i++) await q.append(fixedReadings(1 + (i % 5)));
    assert.ok(q.stats().droppedRecords > 0, 'drop-oldest ran');
    const first = q.stats().firstSeq!;
    await Promise.all([q.delete(first + 3), q.delete(first + 5)]);
    await q.quarantine(first + 7, 'test');
    const before = q.stats();
    await q.stop();
    const s = await scan(fx.dir);
    assert.deepEqual(s.stored, {
      records: s.records,
      readings: s.readings,
      recordBytes: s.recordBytes,
      quarantineBytes: s.quarantineBytes,
    });
    assert.equal(before.records, s.records);
    assert.equal(before.readings, s.readings);
    assert.equal(before.bytes, s.recordBytes + s.quarantineBytes);
    const again = fx.make({ maxBytes: 4 * 1024 });
    await again.start();
    assert.deepEqual(again.stats(), { ...sealedAtStop(before), droppedReadings: 0, droppedRecords: 0 });
  });

  it('starts from the stored figures without scanning a queue longer than its head index', async function () {
    this.timeout(60_000);
    const q = fx.make();
    await q.start();
    for (let i = 0; i < 5000; i++) await q.append(fixedReadings(2));
    await q.stop();
    const s = await scan(fx.dir);
    assert.equal(s.records, 5000);
    // Figures that only a start which trusts them (no scan) would report.
    await setFigures(fx.dir, { records: 6000, readings: 12_345, recordBytes: 999_999, quarantineBytes: 0 });
    const trusted = fx.make();
    await trusted.start();
    assert.equal(trusted.stats().readings, 12_345);
    assert.equal(trusted.stats().records, 6000);
  });

  it('scans once when the figures are missing (an older queue) or disagree with the records, and stores them', async () => {
    const q = fx.make();
    await q.start();
    for (let i = 0; i < 20; i++) await q.append(fixedReadings(3));
    const expected = q.stats();
    await q.stop();
    for (const stored of [null, { records: 20, readings: 61, recordBytes: 1, quarantineBytes: 0 }]) {
      await setFigures(fx.dir, stored);
      const r = fx.make();
      await r.start();
      assert.deepEqual(r.stats(), expected);
      await r.stop();
      const s = await scan(fx.dir);
      assert.deepEqual(s.stored, {
        records: 20,
        readings: 60,
        recordBytes: s.recordBytes,
        quarantineBytes: 0,
      });
    }
  });

  it('keeps the figures exact when the process is killed (SIGKILL) mid-way through appends and deletes', async function () {
    this.timeout(60_000);
    const child = fileURLToPath(new URL('./figures-crash-child.js', import.meta.url));
    for (const killAfter of [37, 111, 260]) {
      const p = fork(child, [fx.dir, '11'.repeat(32)], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
      await new Promise<void>((resolve, reject) => {
        p.on('message', (op: number) => {
          if (op >= killAfter) {
            // Let the next operation get going, then kill it in flight.
            setImmediate(() => {
              p.kill('SIGKILL');
              resolve();
            });
          }
        });
        p.once('exit', (code) => reject(new Error(`crash child exited early (${String(code)})`)));
      });
      await exited;
      const s = await scan(fx.dir);
      assert.ok(s.records > 0);
      assert.deepEqual(s.stored, {
        records: s.records,
        readings: s.readings,
        recordBytes: s.recordBytes,
        quarantineBytes: 0,
      });
      // The totals on disk balance with what is on disk, whenever the process died.
      const t = s.totals;
      assert.ok(t !== null, 'the totals are stored');
      assert.ok(t.deliveredRecords > 0, 'acks ran');
      if (killAfter === 260) assert.ok(t.droppedRecords > 0, 'drops ran');
      assert.equal(
        t.committedRecords,
        t.deliveredRecords + t.droppedRecords + t.quarantinedRecords + s.records,
      );
      assert.equal(
        t.committedReadings,
        t.deliveredReadings + t.droppedReadings + t.quarantinedReadings + s.readings,
      );
      const q = fx.make({ maxBytes: 8 * 1024 });
      await q.start();
      assert.deepEqual(q.stats().totals, t);
      assert.equal(q.stats().records, s.records);
      assert.equal(q.stats().readings, s.readings);
      assert.equal(q.stats().bytes, s.recordBytes);
      await q.stop();
    }
  });
});
