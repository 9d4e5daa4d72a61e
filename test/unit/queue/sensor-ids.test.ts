// The queue's sealed sensor-id dictionary on a real LevelDB (seal/sensor-ids.ts): each entry is
// written in the batch of the first record that uses it (so a SIGKILL can never leave a record
// without its entry), indices survive restarts and are never handed out twice, and a record whose
// entry is missing or damaged is quarantined and counted like a tampered record, never stalling
// the drain.

import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Level } from 'level';
import { QueueRecordSource } from '../../../src/queue/record-source.js';
import {
  KIND_RECORD,
  KIND_SENSOR_ID,
  META_SENSOR_ID_NEXT,
  RECORD_END,
  SENSOR_ID_END,
  queueKey,
  seqOfKey,
  toRecord,
} from '../../../src/queue/keys.js';
import type { SealedQueue } from '../../../src/queue/sealed-queue.js';
import { repairQueue } from '../../../src/queue/repair.js';
import { Keyring } from '../../../src/seal/keyring.js';
import { COMPACT_FORMAT_VERSION, recordFormat } from '../../../src/seal/sealer.js';
import type { OpenRecord, Reading } from '../../../src/types.js';
import { queueFixture, type QueueFixture } from '../../helpers/queue.js';
import { waitFor } from '../../helpers/site.js';

const T0 = 1_764_380_000_000;

function readingsOf(sensors: readonly string[], at: number): Reading[] {
  return sensors.map((sensor, i) => ({ sensor, ts: at + i, value: 20 + i / 10, quality: 'good' }));
}

type Op = { type: string; key: Uint8Array };

function openDb(dir: string): Level<Uint8Array, Uint8Array> {
  return new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
}

async function entryKeys(dir: string): Promise<number[]> {
  const db = openDb(dir);
  try {
    const keys = await db.keys({ gte: queueKey(KIND_SENSOR_ID, 0), lt: SENSOR_ID_END }).all();
    return keys.map(seqOfKey);
  } finally {
    await db.close();
  }
}

describe('queue sensor-id dictionary (real LevelDB)', () => {
  let fx: QueueFixture;
  beforeEach(async () => {
    fx = await queueFixture();
  });
  afterEach(() => fx.cleanup());

  const open = (q: SealedQueue, rec: Parameters<Keyring['open']>[0]): OpenRecord =>
    fx.ring.open(rec, q.sealedBy(rec.seq), q.sensorIds);

  async function drain(q: SealedQueue, quarantined: number[]): Promise<OpenRecord[]> {
    const source = new QueueRecordSource(
      q,
      (rec) => open(q, rec),
      (seq) => quarantined.push(seq),
    );
    const out: OpenRecord[] = [];
    for (let after = 0; ;) {
      const recs = await source.next(after, 100);
      if (recs.length === 0) return out;
      out.push(...recs.filter((r) => r.notice === undefined));
      after = recs[recs.length - 1]!.seq;
    }
  }

  it('writes each new entry in the batch of the first record that uses it, and only then', async () => {
    const q = fx.make(fx.indexed);
    await q.start();
    // The real handle's own write events: the operations of every batch, in order.
    const db = (q as unknown as { store: { db: Level<Uint8Array, Uint8Array> } }).store.db;
    const batches: Op[][] = [];
    db.on('write', (ops: Op[]) => batches.push(ops));
    await q.append(readingsOf(['boiler-temp', 'boiler-press'], T0));
    await q.append(readingsOf(['boiler-temp', 'boiler-press'], T0 + 1000));
    // A sensor added by a reload: its first record brings its entry.
    await q.append(readingsOf(['boiler-temp', 'tank-level-1'], T0 + 2000));
    const puts = batches.map((ops) =>
      ops.filter((o) => o.type === 'put').map((o) => Buffer.from(o.key).toString('hex')),
    );
    const rec = (seq: number) => Buffer.from(queueKey(KIND_RECORD, seq)).toString('hex');
    const entry = (i: number) => Buffer.from(queueKey(KIND_SENSOR_ID, i)).toString('hex');
    const next = Buffer.from(META_SENSOR_ID_NEXT).toString('hex');
    assert.equal(puts.length, 3);
    assert.ok(
      [rec(1), entry(0), entry(1), next].every((k) => puts[0]!.includes(k)),
      'record 1 with entries 0, 1',
    );
    assert.ok(!puts[1]!.some((k) => k.startsWith('0c') || k === next), 'record 2 needs no entry');
    assert.ok(
      [rec(3), entry(2), next].every((k) => puts[2]!.includes(k)),
      'record 3 with entry 2',
    );
    assert.equal(q.sensorIds.size, 3);
    await q.stop();
    assert.deepEqual(await entryKeys(fx.dir), [0, 1, 2]);
  });

  it('keeps records and indices across a restart: they open, known sensors keep their index, new ones get the next', async () => {
    const first = fx.make(fx.indexed);
    await first.start();
    const sent = [
      readingsOf(['boiler-temp', 'boiler-press', 'ahu1-fan-hz'], T0),
      readingsOf(['ahu1-fan-hz', 'boiler-temp'], T0 + 1000),
    ];
    for (const r of sent) await first.append(r);
    await first.stop();

    const again = fx.make(fx.indexed);
    await again.start();
    assert.equal(again.sensorIds.size, 3);
    sent.push(readingsOf(['boiler-press', 'outdoor-rh'], T0 + 2000));
    await again.append(sent[2]!);
    assert.equal(again.sensorIds.size, 4, 'only the new sensor took an entry');
    assert.equal(again.sensorIds.idOf(3, fx.ring), 'outdoor-rh');
    const stored = await again.read(0, 10);
    assert.ok(stored.every((r) => recordFormat(r.bytes) === COMPACT_FORMAT_VERSION));
    assert.deepEqual(
      stored.map((r) => open(again, r).readings),
      sent,
    );
    await again.stop();
  });

  it('opens format-1 records of an older build beside format-3 ones in the same queue', async () => {
    const old = fx.make();
    await old.start();
    await old.append(readingsOf(['boiler-temp'], T0));
    await old.stop();
    const now = fx.make(fx.indexed);
    await now.start();
    await now.append(readingsOf(['boiler-temp'], T0 + 1000));
    const quarantined: number[] = [];
    const got = await drain(now, quarantined);
    assert.deepEqual(quarantined, []);
    assert.deepEqual(
      got.map((r) => r.readings),
      [readingsOf(['boiler-temp'], T0), readingsOf(['boiler-temp'], T0 + 1000)],
    );
    await now.stop();
  });

  it('quarantines and counts a record whose entry is missing, drains on, and never reuses the index', async () => {
    const q = fx.make(fx.indexed);
    await q.start();
    await q.append(readingsOf(['a-sensor'], T0));
    await q.append(readingsOf(['a-sensor', 'b-sensor'], T0 + 1000));
    await q.append(readingsOf(['a-sensor'], T0 + 2000));
    await q.stop();
    // Damage: entry 1 (b-sensor), the highest index, is gone.
    const db = openDb(fx.dir);
    await db.del(queueKey(KIND_SENSOR_ID, 1));
    await db.close();

    const again = fx.make(fx.indexed);
    await again.start();
    const quarantined: number[] = [];
    const got = await drain(again, quarantined);
    assert.deepEqual(quarantined, [2]);
    assert.deepEqual(
      got.map((r) => r.seq),
      [1, 3],
    );
    const s = again.stats();
    assert.equal(s.quarantined, 1);
    assert.equal(s.totals.quarantinedRecords, 1);
    assert.equal(s.totals.quarantinedReadings, 2);
    // A sensor new now must not take index 1: old records that refer to it would read as it.
    await again.append(readingsOf(['c-sensor'], T0 + 3000));
    assert.equal(again.sensorIds.idOf(1, fx.ring), undefined);
    assert.equal(again.sensorIds.idOf(2, fx.ring), 'c-sensor');
    await again.stop();
  });

  it('reports a damaged entry, never re-creates it, and quarantines the records that use it', async () => {
    const q = fx.make(fx.indexed);
    await q.start();
    await q.append(readingsOf(['a-sensor', 'b-sensor'], T0));
    await q.append(readingsOf(['a-sensor'], T0 + 1000));
    await q.stop();
    const db = openDb(fx.dir);
    const e = Uint8Array.from(await db.get(queueKey(KIND_SENSOR_ID, 1)));
    e[e.length - 1]! ^= 0x01;
    await db.put(queueKey(KIND_SENSOR_ID, 1), e);
    await db.close();

    const again = fx.make(fx.indexed);
    await again.start();
    assert.deepEqual(again.verifySensorIds(fx.ring), { entries: 2, damaged: [1] });
    assert.deepEqual(await again.verify((rec) => open(again, rec)), { ok: 1, tampered: [1] });
    const quarantined: number[] = [];
    assert.deepEqual(
      (await drain(again, quarantined)).map((r) => r.seq),
      [2],
    );
    assert.deepEqual(quarantined, [1]);
    // b-sensor reads again: it gets a new entry; the damaged one stays as it was.
    await again.append(readingsOf(['b-sensor'], T0 + 2000));
    assert.equal(again.sensorIds.idOf(2, fx.ring), 'b-sensor');
    await again.stop();
    const after = openDb(fx.dir);
    assert.deepEqual(Buffer.from(await after.get(queueKey(KIND_SENSOR_ID, 1))), Buffer.from(e));
    await after.close();
  });

  it('repair keeps indexed records (they authenticate without the dictionary) and reports a damaged entry', async () => {
    const q = fx.make(fx.indexed);
    await q.start();
    await q.append(readingsOf(['a-sensor', 'b-sensor'], T0));
    await q.append(readingsOf(['a-sensor'], T0 + 1000));
    await q.stop();
    const db = openDb(fx.dir);
    const e = Uint8Array.from(await db.get(queueKey(KIND_SENSOR_ID, 0)));
    e[20]! ^= 0x01;
    await db.put(queueKey(KIND_SENSOR_ID, 0), e);
    await db.close();
    const ring = fx.ring;
    const r = await repairQueue(fx.dir, {
      current: ring.currentId,
      files: ring.files(),
      identify: (rec, salts) => ring.identify(rec, salts),
      openId: (i, entry) => ring.openId(i, entry),
    });
    assert.equal(r.kept, 2);
    assert.deepEqual(r.quarantined, []);
    assert.equal(r.sensorIds, 2);
    assert.deepEqual(r.damagedSensorIds, [0]);
    assert.deepEqual(await entryKeys(fx.dir), [0, 1], 'nothing re-created or removed');
  });

  it('repair sets the next index past every index a kept record uses, when entries and the mark are lost', async () => {
    const q = fx.make(fx.indexed);
    await q.start();
    await q.append(readingsOf(['a-sensor'], T0));
    await q.append(readingsOf(['a-sensor', 'b-sensor'], T0 + 1000));
    await q.stop();
    const db = openDb(fx.dir);
    await db.batch([
      { type: 'del', key: queueKey(KIND_SENSOR_ID, 1) },
      { type: 'del', key: META_SENSOR_ID_NEXT },
    ]);
    await db.close();
    const ring = fx.ring;
    const r = await repairQueue(fx.dir, {
      current: ring.currentId,
      files: ring.files(),
      identify: (rec, salts) => ring.identify(rec, salts),
      openId: (i, entry) => ring.openId(i, entry),
      indicesOf: (rec, keyId, salts) => ring.indicesOf(rec, keyId, salts),
    });
    assert.equal(r.kept, 2);
    const again = fx.make(fx.indexed);
    await again.start();
    await again.append(readingsOf(['c-sensor'], T0 + 2000));
    assert.equal(again.sensorIds.idOf(1, fx.ring), undefined, 'index 1 stays unused');
    assert.equal(again.sensorIds.idOf(2, fx.ring), 'c-sensor');
    const quarantined: number[] = [];
    // Repair continues seqs at the seq mark: the new record's seq is past it.
    assert.deepEqual(
      (await drain(again, quarantined)).map((x) => x.readings.map((r) => r.sensor)),
      [['a-sensor'], ['c-sensor']],
    );
    assert.deepEqual(quarantined, [2], 'the record of the lost entry never reads as c-sensor');
    await again.stop();
  });

  it("after a key rotation, deletes the old key's entries once its records are gone; indices stay used", async () => {
    const k1 = { key: Buffer.alloc(32, 1), file: 'old.key' };
    const k2 = { key: Buffer.alloc(32, 2), file: 'new.key' };
    const keysOf = (ring: Keyring) => ({
      seal: (seq: number, readings: readonly Reading[], ids: SealedQueue['sensorIds']) =>
        ring.seal(seq, readings, ids),
      keys: {
        current: ring.currentId,
        files: ring.files(),
        identify: (...a: Parameters<Keyring['identify']>) => ring.identify(...a),
      },
    });
    const before = await Keyring.fromKeys(k1);
    const q1 = fx.make(keysOf(before));
    await q1.start();
    await q1.append(readingsOf(['a-sensor', 'b-sensor'], T0));
    await q1.stop();

    const rotated = await Keyring.fromKeys(k2, [k1]);
    const q2 = fx.make(keysOf(rotated));
    await q2.start();
    await q2.append(readingsOf(['a-sensor'], T0 + 1000));
    assert.deepEqual(
      (await q2.read(0, 10)).map((r) => rotated.open(r, q2.sealedBy(r.seq), q2.sensorIds).readings),
      [readingsOf(['a-sensor', 'b-sensor'], T0), readingsOf(['a-sensor'], T0 + 1000)],
    );
    assert.ok(await q2.delete(1), "the old key's record is delivered");
    // Its key drained: its entries are deleted at once (with the record's tombstone), not at the next start.
    await waitFor(() => q2.keyRanges().length === 1, 5000, 'the drained key forgotten');
    await q2.stop();
    assert.deepEqual(await entryKeys(fx.dir), [2]);

    // The old key file is gone from the config: its entries are not needed, nor reported as damage.
    const only = await Keyring.fromKeys(k2);
    const q3 = fx.make(keysOf(only));
    await q3.start();
    assert.deepEqual(q3.verifySensorIds(only), { entries: 1, damaged: [] });
    await q3.append(readingsOf(['b-sensor'], T0 + 2000));
    assert.equal(q3.sensorIds.idOf(3, only), 'b-sensor', 'a new index, past the deleted ones');
    await q3.stop();
    assert.deepEqual(await entryKeys(fx.dir), [2, 3]);
  });

  it('never leaves a record without its entry when the process is killed (SIGKILL) mid-way', async function () {
    this.timeout(60_000);
    const child = fileURLToPath(new URL('./sensor-ids-crash-child.js', import.meta.url));
    const keyHex = '22'.repeat(32);
    for (const [run, killAfter] of [5, 23, 61].entries()) {
      const p = fork(child, [fx.dir, keyHex, String(run)], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
      await new Promise<void>((resolve, reject) => {
        p.on('message', (op: number) => {
          if (op >= killAfter) {
            // Let the next append get going, then kill it in flight.
            setImmediate(() => {
              p.kill('SIGKILL');
              resolve();
            });
          }
        });
        p.once('exit', (code) => reject(new Error(`crash child exited early (${String(code)})`)));
      });
      await exited;
      // Every record on disk opens with the dictionary on disk.
      const ring = await Keyring.fromKeys({ key: Buffer.from(keyHex, 'hex'), file: 'crash-key' });
      const q = fx.make({ seal: (seq, readings, ids) => ring.seal(seq, readings, ids) });
      await q.start();
      const recs = await q.read(0, 100_000);
      assert.ok(recs.length >= killAfter, `${recs.length} records after run ${run}`);
      for (const rec of recs) {
        const readings = ring.open(rec, q.sealedBy(rec.seq), q.sensorIds).readings;
        assert.equal(readings.length, 3);
        assert.equal(readings[1]!.sensor, 'known-sensor');
      }
      await q.stop();
    }
    // The records themselves, read raw: all of format 4 (compact).
    const db = openDb(fx.dir);
    for await (const [k, v] of db.iterator({ gte: queueKey(KIND_RECORD, 0), lt: RECORD_END })) {
      assert.equal(recordFormat(toRecord(seqOfKey(k), v).bytes), COMPACT_FORMAT_VERSION);
    }
    await db.close();
  });
});
