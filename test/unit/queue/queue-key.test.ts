// Break 3 of issue 6: the queue knows which key sealed it. A wrong key is refused at start with
// nothing touched; rotation (previous keys) opens older records until drained. Real LevelDB, real
// libsodium.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { EdgegwError, Exit } from '../../../src/errors.js';
import { Keyring, keyIdOf } from '../../../src/seal/keyring.js';
import { SealedQueue } from '../../../src/queue/sealed-queue.js';
import { META_KEYS, type QueueKeys } from '../../../src/queue/key-ranges.js';
import { captureLog, fixedReadings } from '../../helpers/queue.js';

const KEY_A = { key: randomBytes(32), file: '/etc/edgegw/key-a' };
const KEY_B = { key: randomBytes(32), file: '/etc/edgegw/key-b' };

function keysOf(ring: Keyring): QueueKeys {
  return {
    current: ring.currentId,
    files: ring.files(),
    identify: (rec, salts) => ring.identify(rec, salts),
  };
}

describe('queue keys (key ids, refusal, rotation)', () => {
  let dir: string;
  const made: SealedQueue[] = [];
  const logs = captureLog();
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'edgegw-qkey-')), 'data');
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
      seal: (seq, readings) => ring.seal(seq, readings),
      log: logs.log,
      keys: keysOf(ring),
    });
    made.push(q);
    return q;
  }

  async function fill(ring: Keyring, n: number): Promise<void> {
    const q = queue(ring);
    await q.start();
    for (let i = 0; i < n; i++) await q.append(fixedReadings(3));
    await q.stop();
  }

  async function refusal(q: SealedQueue): Promise<EdgegwError> {
    const err = await q.start().then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof EdgegwError, `expected a refusal, got ${String(err)}`);
    return err;
  }

  it('a key id is 16 bytes of hex, stable per key, different between keys, and not the key', async () => {
    const a = await keyIdOf(KEY_A.key);
    assert.match(a, /^[0-9a-f]{32}$/);
    assert.equal(await keyIdOf(Uint8Array.from(KEY_A.key)), a);
    assert.notEqual(await keyIdOf(KEY_B.key), a);
    assert.ok(!KEY_A.key.toString('hex').includes(a) && !a.includes(KEY_A.key.toString('hex').slice(0, 8)));
  });

  it('a wrong key is refused at start, naming the key file and the missing key id; nothing is touched', async () => {
    const a = await Keyring.fromKeys(KEY_A);
    await fill(a, 4);
    const b = await Keyring.fromKeys(KEY_B);
    const err = await refusal(queue(b));
    assert.equal(err.code, 'EDGEGW_E_QUEUE_KEY');
    assert.equal(err.exitCode, Exit.CONFIG);
    assert.ok(err.message.includes(KEY_B.file), err.message);
    assert.ok(err.message.includes(a.currentId), 'names the key id that sealed the queue');
    assert.match(err.message, /previousKeyFiles/);
    assert.ok(!err.message.includes(KEY_B.key.toString('hex')));

    // The right key back: every record is there and opens; nothing was quarantined.
    const q = queue(a);
    await q.start();
    assert.equal(q.stats().records, 4);
    assert.equal(q.stats().quarantined, 0);
    const recs = await q.read(0, 10);
    assert.deepEqual(
      recs.map((r) => a.open(r, q.sealedBy(r.seq)).seq),
      [1, 2, 3, 4],
    );
  });

  it('rotation: previous keys open older records, new ones use keyFile, and a drained key is forgotten', async () => {
    const a = await Keyring.fromKeys(KEY_A);
    await fill(a, 3);
    const rotated = await Keyring.fromKeys(KEY_B, [KEY_A]);
    const q = queue(rotated);
    await q.start();
    await q.append(fixedReadings(2));
    assert.equal(q.sealedBy(1), a.currentId);
    assert.equal(q.sealedBy(3), a.currentId);
    assert.equal(q.sealedBy(4), rotated.currentId);
    const recs = await q.read(0, 10);
    const opened = recs.map((r) => rotated.open(r, q.sealedBy(r.seq)));
    assert.deepEqual(
      opened.map((r) => [r.seq, r.readings.length]),
      [
        [1, 3],
        [2, 3],
        [3, 3],
        [4, 2],
      ],
    );
    // Record 4 is sealed with the new key: the old key alone does not open it.
    assert.throws(() => a.open(recs[3]!, null), /failed authentication/);
    await q.stop();

    // Old records still queued: dropping previousKeyFiles is refused, naming the old key id.
    const only = await Keyring.fromKeys(KEY_B);
    const err = await refusal(queue(only));
    assert.equal(err.code, 'EDGEGW_E_QUEUE_KEY');
    assert.ok(err.message.includes(a.currentId));

    // Drain the old records (acknowledged), then the new key alone is enough.
    const drain = queue(rotated);
    await drain.start();
    for (const seq of [1, 2, 3]) await drain.delete(seq);
    await drain.stop();
    const after = queue(only);
    await after.start();
    assert.deepEqual(
      after.keyRanges().map((r) => r.id),
      [only.currentId],
    );
    const left = await after.read(0, 10);
    assert.deepEqual(
      left.map((r) => only.open(r, after.sealedBy(r.seq)).seq),
      [4],
    );
  });

  it('an empty queue accepts a new key', async () => {
    const a = await Keyring.fromKeys(KEY_A);
    const first = queue(a);
    await first.start();
    await first.append(fixedReadings(1));
    await first.delete(1);
    await first.stop();
    const b = await Keyring.fromKeys(KEY_B);
    const q = queue(b);
    await q.start();
    assert.equal(q.stats().nextSeq, 2);
    assert.equal(await q.append(fixedReadings(1)), 2);
    assert.equal(q.sealedBy(2), b.currentId);
  });

  it('a queue written before key ids were kept learns its key once, and refuses a wrong one', async () => {
    const a = await Keyring.fromKeys(KEY_A);
    await fill(a, 2);
    const raw = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
    await raw.open();
    await raw.del(META_KEYS);
    await raw.close();

    const err = await refusal(queue(await Keyring.fromKeys(KEY_B)));
    assert.equal(err.code, 'EDGEGW_E_QUEUE_KEY');
    const q = queue(a);
    await q.start();
    assert.equal(q.sealedBy(1), a.currentId);
    assert.equal(q.stats().records, 2);
  });
});
