// Compact records' nonce salts on a real LevelDB (seal/nonce-salts.ts): each start seals with a
// salt of its own from its next seq on, so a seq handed out again (newest records lost in a power
// cut) never gets a nonce twice; records of earlier starts keep opening; the salts live in the
// meta and in a file beside it, so a repair opens records whose meta salts were lost; and a queue
// that cannot store a salt seals with stored nonces instead of without a recorded salt.

import assert from 'node:assert/strict';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import {
  KIND_RECORD,
  META_FIGURES,
  META_NEXT_SEQ,
  META_SALTS,
  numberValue,
  queueKey,
} from '../../../src/queue/keys.js';
import { repairQueue } from '../../../src/queue/repair.js';
import { SALTS_FILE, readSaltFile } from '../../../src/queue/salt-file.js';
import type { SealedQueue } from '../../../src/queue/sealed-queue.js';
import { decodeSalts } from '../../../src/seal/nonce-salts.js';
import { COMPACT_FORMAT_VERSION, INDEXED_FORMAT_VERSION, recordFormat } from '../../../src/seal/sealer.js';
import { Keyring } from '../../../src/seal/keyring.js';
import type { Reading } from '../../../src/types.js';
import { queueFixture, type QueueFixture } from '../../helpers/queue.js';

const T0 = 1_764_380_000_000;

function readingsAt(at: number): Reading[] {
  return ['boiler-t-001', 'press-in-002'].map((sensor, i) => ({
    sensor,
    ts: at + i * 50,
    value: 20 + i / 10,
    quality: 'good',
  }));
}

function openDb(dir: string): Level<Uint8Array, Uint8Array> {
  return new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
}

const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('hex');

describe('queue nonce salts (real LevelDB)', () => {
  let fx: QueueFixture;
  beforeEach(async () => {
    fx = await queueFixture();
  });
  afterEach(() => fx.cleanup());

  const openAll = async (q: SealedQueue): Promise<(readonly Reading[])[]> =>
    (await q.read(0, 100)).map((rec) => fx.ring.open(rec, q.sealedBy(rec.seq), q.sensorIds).readings);

  it('seals each start with a salt of its own; earlier records keep opening; drained epochs are forgotten', async () => {
    const q1 = fx.make(fx.indexed);
    await q1.start();
    await q1.append(readingsAt(T0));
    await q1.append(readingsAt(T0 + 1000));
    const first = hex(q1.sensorIds.salts.of(1));
    await q1.stop();

    const q2 = fx.make(fx.indexed);
    await q2.start();
    assert.deepEqual(
      q2.sensorIds.salts.all().map((e) => e.fromSeq),
      [1, 3],
    );
    assert.equal(hex(q2.sensorIds.salts.of(2)), first);
    assert.notEqual(hex(q2.sensorIds.salts.of(3)), first);
    await q2.append(readingsAt(T0 + 2000));
    const stored = await q2.read(0, 10);
    assert.ok(stored.every((r) => recordFormat(r.bytes) === COMPACT_FORMAT_VERSION));
    assert.deepEqual(await openAll(q2), [readingsAt(T0), readingsAt(T0 + 1000), readingsAt(T0 + 2000)]);
    assert.ok(await q2.delete(1));
    assert.ok(await q2.delete(2));
    await q2.stop();

    const q3 = fx.make(fx.indexed);
    await q3.start();
    // Seq 3 is the lowest stored: the first start's epoch holds nothing and is gone.
    assert.deepEqual(
      q3.sensorIds.salts.all().map((e) => e.fromSeq),
      [3, 4],
    );
    assert.deepEqual(await openAll(q3), [readingsAt(T0 + 2000)]);
    await q3.stop();
    // The file beside the database says what the meta says.
    const db = openDb(fx.dir);
    const inMeta = decodeSalts(await db.get(META_SALTS));
    await db.close();
    const inFile = await readSaltFile(fx.dir);
    assert.deepEqual(
      inFile?.map((e) => [e.fromSeq, hex(e.salt)]),
      inMeta?.map((e) => [e.fromSeq, hex(e.salt)]),
    );
  });

  it('a seq handed out again after its record was lost (a power cut) is sealed with a new salt', async () => {
    const q1 = fx.make(fx.indexed);
    await q1.start();
    for (let i = 0; i < 3; i++) await q1.append(readingsAt(T0 + i * 1000));
    const lost = hex(q1.sensorIds.salts.of(2));
    await q1.stop();
    // What an unsynced tail lost in a power cut leaves: records 2 and 3 and the next seq gone.
    const db = openDb(fx.dir);
    await db.batch([
      { type: 'del', key: queueKey(KIND_RECORD, 2) },
      { type: 'del', key: queueKey(KIND_RECORD, 3) },
      { type: 'put', key: META_NEXT_SEQ, value: numberValue(2) },
      { type: 'del', key: META_FIGURES },
    ]);
    await db.close();

    const q2 = fx.make(fx.indexed);
    await q2.start();
    assert.equal(await q2.append(readingsAt(T0 + 5000)), 2, 'seq 2 is handed out again');
    assert.notEqual(hex(q2.sensorIds.salts.of(2)), lost, 'with a salt the lost record 2 did not have');
    assert.equal(hex(q2.sensorIds.salts.of(1)), lost, 'record 1 keeps the salt it was sealed with');
    assert.deepEqual(await openAll(q2), [readingsAt(T0), readingsAt(T0 + 5000)]);
    await q2.stop();
  });

  it('repair opens records from the salt file when damage took the meta salts; with neither they are quarantined', async () => {
    const q1 = fx.make(fx.indexed);
    await q1.start();
    await q1.append(readingsAt(T0));
    await q1.append(readingsAt(T0 + 1000));
    await q1.stop();
    const keys = {
      current: fx.ring.currentId,
      files: fx.ring.files(),
      identify: (...a: Parameters<typeof fx.ring.identify>) => fx.ring.identify(...a),
    };
    let db = openDb(fx.dir);
    await db.del(META_SALTS);
    await db.close();
    const kept = await repairQueue(fx.dir, keys);
    assert.equal(kept.kept, 2);
    assert.deepEqual(kept.quarantined, []);
    const q2 = fx.make(fx.indexed);
    await q2.start();
    assert.deepEqual(await openAll(q2), [readingsAt(T0), readingsAt(T0 + 1000)]);
    await q2.stop();

    db = openDb(fx.dir);
    await db.del(META_SALTS);
    await db.close();
    await rm(join(fx.dir, SALTS_FILE));
    const lost = await repairQueue(fx.dir, keys);
    assert.equal(lost.kept, 0);
    assert.deepEqual(lost.quarantined, [1, 2], 'not authenticated, so quarantined and counted, never kept');
  });

  it('a queue written without key ids opens with its key (compact records identified with their salt); a wrong key changes nothing', async () => {
    const q1 = fx.make(fx.indexed);
    await q1.start();
    await q1.append(readingsAt(T0));
    await q1.stop();
    const before = await readFile(join(fx.dir, SALTS_FILE), 'utf8');
    const other = await Keyring.fromKeys({ key: Buffer.alloc(32, 7), file: 'other.key' });
    const refused = fx.make({
      seal: (seq, readings, ids) => other.seal(seq, readings, ids),
      keys: { current: other.currentId, files: other.files(), identify: (...a) => other.identify(...a) },
    });
    await assert.rejects(refused.start(), { code: 'EDGEGW_E_QUEUE_KEY' });
    assert.equal(await readFile(join(fx.dir, SALTS_FILE), 'utf8'), before, 'a refused start begins no epoch');

    const q2 = fx.make({
      ...fx.indexed,
      keys: {
        current: fx.ring.currentId,
        files: fx.ring.files(),
        identify: (...a) => fx.ring.identify(...a),
      },
    });
    await q2.start();
    assert.deepEqual(
      q2.keyRanges().map((r) => r.id),
      [fx.ring.currentId],
    );
    assert.deepEqual(await openAll(q2), [readingsAt(T0)]);
    await q2.stop();
  });

  it('seals with stored nonces (format 3) when the salt cannot be stored, and says so', async () => {
    const q1 = fx.make(fx.indexed);
    await q1.start();
    await q1.stop();
    // The salt file's name taken by a folder: its replacement (a rename over it) fails.
    await rm(join(fx.dir, SALTS_FILE));
    await mkdir(join(fx.dir, SALTS_FILE, 'in-the-way'), { recursive: true });
    const q2 = fx.make(fx.indexed);
    await q2.start();
    assert.equal(q2.sensorIds.salts.current, null);
    await q2.append(readingsAt(T0));
    const [rec] = await q2.read(0, 10);
    assert.equal(recordFormat(rec!.bytes), INDEXED_FORMAT_VERSION);
    assert.deepEqual(await openAll(q2), [readingsAt(T0)]);
    assert.ok(
      fx.logs.lines.some((l) => String(l.msg).startsWith('nonce salt not written')),
      fx.logs.text(),
    );
    await q2.stop();
    await assert.rejects(readFile(join(fx.dir, SALTS_FILE), 'utf8'), { code: 'EISDIR' });
  });
});
