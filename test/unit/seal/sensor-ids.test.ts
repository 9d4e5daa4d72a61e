// Record format 3 and the sealed sensor-id dictionary (seal/sensor-ids.ts), with real libsodium:
// records carry indices only, entries are sealed and bound to their index and key, an index
// without an authentic entry fails the record like tampering, and format-1 records still open.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Keyring } from '../../../src/seal/keyring.js';
import {
  DamagedIdError,
  INDEXED_FORMAT_VERSION,
  SEALED_FORMAT_VERSION,
  TamperedRecordError,
  entryKeyId,
} from '../../../src/seal/sealer.js';
import { SensorIds } from '../../../src/seal/sensor-ids.js';
import { decodeIndexedBody, encodeIndexedBody, indicesOf } from '../../../src/seal/codec.js';
import { SITE_IDS, prng, siteReadings } from '../../helpers/readings.js';

const key = (): { key: Uint8Array; file: string } => ({ key: randomBytes(32), file: 'k' });

describe('seal/sensor-ids (record format 3)', () => {
  const readings = siteReadings(SITE_IDS, 3, prng(5));

  it('round trips readings through indices, in a record with no id table', async () => {
    const ring = await Keyring.fromKeys(key());
    const ids = new SensorIds();
    const rec = ring.seal(7, readings, ids);
    assert.equal(rec.bytes[0], INDEXED_FORMAT_VERSION);
    assert.equal(ids.size, SITE_IDS.length);
    assert.deepEqual(ring.open(rec, null, ids).readings, readings);
    // The same sensors again: no new entries, and the record is far smaller than format 1's.
    const again = ring.seal(8, readings, ids);
    assert.equal(ids.size, SITE_IDS.length);
    assert.ok(again.bytes.length < ring.seal(9, readings).bytes.length - 150);
  });

  it('codes the body with indices only (codec round trip, every index listed)', () => {
    const index = new Map(SITE_IDS.map((id, i) => [id, i * 3]));
    const t0 = Math.min(...readings.map((r) => r.ts));
    const body = encodeIndexedBody(readings, t0, (s) => index.get(s)!);
    const back = decodeIndexedBody(body, readings.length, t0, (i) => SITE_IDS[i / 3]);
    assert.deepEqual(back, readings);
    assert.deepEqual(
      [...indicesOf(body, readings.length, t0)].sort((a, b) => a - b),
      [...index.values()],
    );
    assert.throws(() => decodeIndexedBody(body, readings.length, t0, () => undefined), /bad reading/);
  });

  it('keeps no plaintext sensor id in records or dictionary entries', async () => {
    const ring = await Keyring.fromKeys(key());
    const ids = new SensorIds();
    const text = [
      Buffer.from(ring.seal(1, readings, ids).bytes).toString('latin1'),
      ...ids.all().map(([, e]) => Buffer.from(e).toString('latin1')),
    ].join('|');
    for (const id of SITE_IDS) assert.ok(!text.includes(id.slice(0, 5)), id);
  });

  it('still opens format-1 records (written before the dictionary), with or without one', async () => {
    const ring = await Keyring.fromKeys(key());
    const old = ring.seal(3, readings);
    assert.equal(old.bytes[0], SEALED_FORMAT_VERSION);
    assert.deepEqual(ring.open(old, null).readings, readings);
    assert.deepEqual(ring.open(old, null, new SensorIds()).readings, readings);
  });

  it('fails a record whose dictionary entry is missing, like a tampered record', async () => {
    const ring = await Keyring.fromKeys(key());
    const ids = new SensorIds();
    const rec = ring.seal(4, readings, ids);
    const partial = new SensorIds();
    partial.load(ids.all().filter(([i]) => i !== 5));
    assert.throws(
      () => ring.open(rec, null, partial),
      (err: unknown) => err instanceof TamperedRecordError && err.seq === 4,
    );
    assert.throws(() => ring.open(rec, null), TamperedRecordError, 'no dictionary at all');
  });

  it('refuses a tampered entry, an entry moved to another index, and one that claims another key', async () => {
    const ring = await Keyring.fromKeys(key());
    const ids = new SensorIds();
    const rec = ring.seal(4, readings, ids);
    const entries = ids.all();
    const [, e2] = entries[2]!;
    const flipped = Uint8Array.from(e2);
    flipped[flipped.length - 3]! ^= 1;
    assert.throws(() => ring.openId(2, flipped), DamagedIdError);
    assert.throws(() => ring.openId(3, e2), DamagedIdError, 'moved to another index');
    const otherKey = Uint8Array.from(e2);
    otherKey.set(randomBytes(16), 1);
    assert.throws(() => ring.openId(2, otherKey), /no key file holds/);
    // In a dictionary, the tampered entry fails every record that uses it.
    const damaged = new SensorIds();
    damaged.load(entries.map(([i, e]) => [i, i === 2 ? flipped : e] as const));
    assert.throws(() => ring.open(rec, null, damaged), TamperedRecordError);
    // Sealing never re-creates over it: that sensor gets a new index; the damaged entry stays.
    const next = ring.seal(5, readings, damaged);
    assert.equal(damaged.size, entries.length + 1);
    assert.deepEqual(damaged.all()[2]![1], flipped);
    assert.deepEqual(ring.open(next, null, damaged).readings, readings);
  });

  it('opens each entry with the key that sealed it across a rotation; the new key makes its own', async () => {
    const k1 = key();
    const k2 = key();
    const before = await Keyring.fromKeys(k1);
    const ids = new SensorIds();
    const old = before.seal(1, readings, ids);
    const oldEntries = ids.size;
    const rotated = await Keyring.fromKeys(k2, [k1]);
    const fresh = rotated.seal(2, readings, ids);
    // Every sensor has an entry of the new key too (the old key can go once its records are gone).
    assert.equal(ids.size, 2 * oldEntries);
    const byKey = new Map<string | null, number>();
    for (const [, e] of ids.all()) byKey.set(entryKeyId(e), (byKey.get(entryKeyId(e)) ?? 0) + 1);
    assert.deepEqual(
      byKey,
      new Map([
        [before.currentId, oldEntries],
        [rotated.currentId, oldEntries],
      ]),
    );
    assert.deepEqual(rotated.open(old, before.currentId, ids).readings, readings);
    assert.deepEqual(rotated.open(fresh, rotated.currentId, ids).readings, readings);
    // Without the old key, only its entries (and its records) fail.
    const only = await Keyring.fromKeys(k2);
    const reread = new SensorIds();
    reread.load(ids.all());
    assert.deepEqual(only.open(fresh, null, reread).readings, readings);
    assert.throws(() => only.openId(0, ids.all()[0]![1]), /no key file holds/);
  });

  it('authenticates a format-3 record for its key without the dictionary (repair, legacy probes)', async () => {
    const a = await Keyring.fromKeys(key());
    const b = await Keyring.fromKeys(key(), [key()]);
    const rec = a.seal(11, readings, new SensorIds());
    assert.equal(a.identify(rec), a.currentId);
    assert.equal(b.identify(rec), null);
  });

  it('keeps entries not yet written across a reload of what is stored, and forgets them once written', async () => {
    const ring = await Keyring.fromKeys(key());
    const ids = new SensorIds();
    ring.seal(1, readings.slice(0, 2), ids);
    const first = ids.unwrittenEntries();
    assert.equal(first.length, 2);
    ids.written(first);
    ring.seal(2, readings, ids);
    const pending = ids.unwrittenEntries();
    assert.equal(pending.length, SITE_IDS.length - 2);
    // A reopen after a failed write: the disk holds only the first two; the rest stay pending.
    ids.load(first);
    assert.deepEqual(ids.unwrittenEntries(), pending);
    ids.written(pending);
    assert.deepEqual(ids.unwrittenEntries(), []);
    // A new sensor (a reload added it) takes the next index.
    const rec = ring.seal(
      3,
      [{ sensor: 'new-sensor-01', ts: 1_764_380_000_000, value: 1, quality: 'good' }],
      ids,
    );
    assert.deepEqual(
      ids.unwrittenEntries().map(([i]) => i),
      [SITE_IDS.length],
    );
    assert.equal(ring.open(rec, null, ids).readings[0]!.sensor, 'new-sensor-01');
  });
});
