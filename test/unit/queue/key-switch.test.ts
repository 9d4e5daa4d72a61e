// The rotate-queue-key job's queue side (issue 11): a key switched while the queue runs seals
// from the next record and the dictionary entries made for it; older records keep opening with
// their key, also after a restart; once the old key's records are all gone its range and
// dictionary entries are deleted (the key is reported retired) and a start without it is not
// refused. Real LevelDB, real libsodium, format-3 records (the sealed sensor-id dictionary).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keyring } from '../../../src/seal/keyring.js';
import { entryKeyId } from '../../../src/seal/sealer.js';
import { SealedQueue } from '../../../src/queue/sealed-queue.js';
import { drainedRanges, withRange, type QueueKeys } from '../../../src/queue/key-ranges.js';
import { captureLog, fixedReadings } from '../../helpers/queue.js';
import { waitFor } from '../../helpers/site.js';

const KEY_A = { key: randomBytes(32), file: '/etc/edgegw/key-a' };
const KEY_B = { key: randomBytes(32), file: '/etc/edgegw/key-b' };

function keysOf(ring: Keyring): QueueKeys {
  return {
    current: ring.currentId,
    files: ring.files(),
    identify: (rec, salts) => ring.identify(rec, salts),
  };
}

describe('queue key switched while running (rotate-queue-key)', () => {
  let dir: string;
  const made: SealedQueue[] = [];
  const logs = captureLog();
  let retired: string[][] = [];
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'edgegw-qswitch-')), 'data');
    retired = [];
  });
  afterEach(async () => {
    for (const q of made.splice(0)) await q.stop();
    await rm(join(dir, '..'), { recursive: true, force: true });
  });

  function queue(ring: Keyring): SealedQueue {
    const q = new SealedQueue({
      dir,
      maxBytes: 64 * 1024 * 1024,
      whenFull: 'drop-oldest',
      durability: 'fsync',
      seal: (seq, readings, ids) => ring.seal(seq, readings, ids),
      sealNotice: (seq, notice, t0) => ring.sealNotice(seq, notice, t0),
      log: logs.log,
      keys: keysOf(ring),
      keysRetired: (ids) => retired.push([...ids]),
    });
    made.push(q);
    return q;
  }

  /** Switches `q` from ring `a`'s key to KEY_B live, as the job does (queue-key-rotation.ts). */
  async function switchToB(q: SealedQueue, a: Keyring): Promise<number> {
    const file = join(dir, '..', 'key-b');
    await writeFile(file, KEY_B.key, { mode: 0o600 });
    const held = await Keyring.hold(file);
    const keys: QueueKeys = {
      current: held.id,
      files: new Map([[held.id, held.file], ...a.files()]),
      identify: (rec, salts) => a.identify(rec, salts),
    };
    return q.switchKey(keys, () => a.seat(held));
  }

  async function openAll(q: SealedQueue, ring: Keyring): Promise<[number, string][]> {
    const recs = await q.read(0, 100);
    return recs.map((r) => {
      const o = ring.open(r, q.sealedBy(r.seq), q.sensorIds);
      return [o.seq, o.readings[0]!.sensor];
    });
  }

  it('seals from the next record with the new key; older records open with theirs, also after a restart', async () => {
    const ring = await Keyring.fromKeys(KEY_A);
    const idA = ring.currentId;
    const q = queue(ring);
    await q.start();
    for (let i = 0; i < 3; i++) await q.append(fixedReadings(2));
    assert.deepEqual(q.keyStatus(), { sealing: idA, older: 0 });

    const from = await switchToB(q, ring);
    assert.equal(from, 4);
    const idB = ring.currentId;
    assert.notEqual(idB, idA);
    for (let i = 0; i < 3; i++) await q.append(fixedReadings(2));
    assert.equal(q.sealedBy(3), idA);
    assert.equal(q.sealedBy(4), idB);
    assert.deepEqual(q.keyStatus(), { sealing: idB, older: 1 });
    // The new records are the new key's, dictionary entries included: the old key alone fails.
    const recs = await q.read(0, 10);
    const onlyA = await Keyring.fromKeys(KEY_A);
    assert.throws(() => onlyA.open(recs[3]!, idA, q.sensorIds), /failed authentication/);
    const byKey = new Map<string, number>();
    for (const [, e] of q.sensorIds.all()) byKey.set(entryKeyId(e)!, (byKey.get(entryKeyId(e)!) ?? 0) + 1);
    assert.ok((byKey.get(idA) ?? 0) > 0 && (byKey.get(idB) ?? 0) > 0, 'entries under both keys');
    assert.equal((await openAll(q, ring)).length, 6);
    await q.stop();

    // Restarted (the new key current, the old one previous): same ranges, everything opens.
    const restarted = await Keyring.fromKeys(KEY_B, [KEY_A]);
    const r = queue(restarted);
    await r.start();
    assert.deepEqual(
      r.keyRanges().map((k) => [k.id, k.fromSeq]),
      [
        [idA, 1],
        [idB, 4],
      ],
    );
    assert.deepEqual(
      (await openAll(r, restarted)).map(([seq]) => seq),
      [1, 2, 3, 4, 5, 6],
    );
    assert.equal(await r.append(fixedReadings(1)), 7);
    assert.equal(r.sealedBy(7), idB);
  });

  it('once the old key’s records are delivered, its range and entries go, and a start without it is not refused', async () => {
    const ring = await Keyring.fromKeys(KEY_A);
    const idA = ring.currentId;
    const q = queue(ring);
    await q.start();
    for (let i = 0; i < 3; i++) await q.append(fixedReadings(2));
    await switchToB(q, ring);
    const idB = ring.currentId;
    await q.append(fixedReadings(2));

    // Not while one of its records remains.
    await q.delete(1);
    await q.delete(2);
    await q.append(fixedReadings(1));
    assert.deepEqual(retired, []);
    assert.equal(q.keyStatus().older, 1);

    await q.delete(3);
    await waitFor(() => retired.length === 1, 5000, 'the drained key reported');
    assert.deepEqual(retired, [[idA]]);
    assert.deepEqual(
      q.keyRanges().map((k) => k.id),
      [idB],
    );
    assert.deepEqual(q.keyStatus(), { sealing: idB, older: 0 });
    assert.ok(
      q.sensorIds.all().every(([, e]) => entryKeyId(e) === idB),
      'only the new key’s entries are left',
    );
    await q.stop();

    // The new key alone opens what is left; the old key is not asked for.
    const only = await Keyring.fromKeys(KEY_B);
    const r = queue(only);
    await r.start();
    assert.deepEqual(
      (await openAll(r, only)).map(([seq]) => seq),
      [4, 5],
    );
    assert.deepEqual(
      r.keyRanges().map((k) => k.id),
      [idB],
    );
  });

  it('a notice record the old key sealed keeps that key, live and across a restart, after its records went', async () => {
    const ring = await Keyring.fromKeys(KEY_A);
    const idA = ring.currentId;
    const first = queue(ring);
    await first.start();
    for (let i = 0; i < 3; i++) await first.append(fixedReadings(1));
    await first.quarantine(3, 'test');
    // The stop seals the quarantine's gap: notice seq 4, under the old key.
    await first.stop();
    const q = queue(ring);
    await q.start();
    assert.equal(q.stats().notices, 1);
    assert.equal(await switchToB(q, ring), 5);
    await q.append(fixedReadings(1));
    await q.delete(1);
    await q.delete(2);
    await q.append(fixedReadings(1));
    assert.deepEqual(retired, [], 'notice 4 still needs the old key');
    await q.stop();

    const r = queue(await Keyring.fromKeys(KEY_B, [KEY_A]));
    await r.start();
    assert.equal(r.sealedBy(4), idA);
    const notice = (await r.read(0, 10)).find((x) => x.seq === 4)!;
    const restarted = await Keyring.fromKeys(KEY_B, [KEY_A]);
    assert.ok(restarted.open(notice, r.sealedBy(4), r.sensorIds).notice !== undefined);
    // Delivered: now the old key goes.
    await r.delete(4);
    await waitFor(() => retired.length === 1, 5000, 'the old key reported drained');
    assert.deepEqual(retired, [[idA]]);
  });

  it('a restart after the switch keeps the new key current (no range of the old key is added back)', async () => {
    const ring = await Keyring.fromKeys(KEY_A);
    const q = queue(ring);
    await q.start();
    await q.append(fixedReadings(1));
    await switchToB(q, ring);
    await q.stop();
    // What the queue was told last is the new key: a start with it adds no range.
    const r = queue(await Keyring.fromKeys(KEY_B, [KEY_A]));
    await r.start();
    assert.equal(r.keyRanges().length, 2);
    assert.equal(r.keyRanges()[1]!.fromSeq, 2);
  });
});

describe('key ranges: drained and switched', () => {
  const A = 'a'.repeat(32);
  const B = 'b'.repeat(32);
  const C = 'c'.repeat(32);

  it('drainedRanges: only the oldest ranges whose every seq is gone; the newest always stays', () => {
    const ranges = [
      { id: A, fromSeq: 1 },
      { id: B, fromSeq: 10 },
      { id: C, fromSeq: 20 },
    ];
    assert.equal(drainedRanges(ranges, 9), null);
    assert.deepEqual(drainedRanges(ranges, 10), { kept: ranges.slice(1), retired: [A] });
    assert.deepEqual(drainedRanges(ranges, Infinity), { kept: ranges.slice(2), retired: [A, B] });
    // A key named again by a kept range is not retired.
    const back = [
      { id: A, fromSeq: 1 },
      { id: B, fromSeq: 10 },
      { id: A, fromSeq: 20 },
    ];
    assert.deepEqual(drainedRanges(back, 25)?.retired, [B]);
  });

  it('withRange: a range at the next seq; an empty newest range is replaced', () => {
    assert.deepEqual(withRange([{ id: A, fromSeq: 1 }], B, 5), [
      { id: A, fromSeq: 1 },
      { id: B, fromSeq: 5 },
    ]);
    assert.deepEqual(
      withRange(
        [
          { id: A, fromSeq: 1 },
          { id: B, fromSeq: 5 },
        ],
        C,
        5,
      ),
      [
        { id: A, fromSeq: 1 },
        { id: C, fromSeq: 5 },
      ],
    );
    assert.deepEqual(withRange([{ id: A, fromSeq: 1 }], A, 5), [{ id: A, fromSeq: 1 }]);
  });
});
