import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  COMPACT_FORMAT_VERSION,
  Sealer,
  TamperedRecordError,
  parseSealedHeader,
  recordFormat,
} from '../../../src/seal/sealer.js';
import { SITE_IDS, prng, siteReadings } from '../../helpers/readings.js';

describe('seal/sealer', () => {
  let sealer: Sealer;
  const readings = siteReadings(SITE_IDS, 2, prng(11));

  before(async () => {
    sealer = await Sealer.create(randomBytes(32));
  });

  it('opens what it sealed', () => {
    const rec = sealer.seal(41, readings);
    assert.equal(rec.seq, 41);
    assert.equal(rec.count, readings.length);
    assert.equal(rec.t0, Math.min(...readings.map((r) => r.ts)));
    const opened = sealer.open(rec);
    assert.equal(opened.seq, 41);
    assert.deepEqual(opened.readings, readings);
  });

  it('seals a reading whose timestamp cannot be encoded as a bad reading, never failing the batch', () => {
    const good = { sensor: 'ok-1', ts: 1_764_380_000_000, value: 1.5, quality: 'good' as const };
    const odd = [
      { sensor: 'frac', ts: 1_764_380_000_000.4, value: 1, quality: 'good' as const },
      { sensor: 'nan', ts: Number.NaN, value: 2, quality: 'good' as const },
      { sensor: 'neg', ts: -5, value: 3, quality: 'good' as const },
      { sensor: 'huge', ts: 2 ** 60, value: 4, quality: 'good' as const },
    ];
    const opened = sealer.open(sealer.seal(7, [good, ...odd])).readings;
    assert.deepEqual(opened[0], good);
    assert.deepEqual(
      opened.slice(1).map((r) => [r.sensor, r.value, r.quality]),
      [
        ['frac', 1, 'good'],
        ['nan', 2, 'bad'],
        ['neg', 3, 'bad'],
        ['huge', 4, 'bad'],
      ],
    );
    assert.equal(opened[1]!.ts, 1_764_380_000_000);
    for (const r of opened) assert.ok(Number.isSafeInteger(r.ts) && r.ts >= 0);
  });

  it('keeps no plaintext sensor id in the sealed bytes', () => {
    const text = Buffer.from(sealer.seal(1, readings).bytes).toString('latin1');
    for (const id of SITE_IDS) assert.ok(!text.includes(id.slice(0, 6)), id);
  });

  it('uses a fresh nonce every time', () => {
    const a = sealer.seal(5, readings).bytes;
    const b = sealer.seal(5, readings).bytes;
    assert.notDeepEqual(a, b);
  });

  it('rebuilds the record facts from stored bytes without the key', () => {
    const rec = sealer.seal(9, readings);
    assert.deepEqual(parseSealedHeader(9, rec.bytes), rec);
    assert.throws(() => parseSealedHeader(9, new Uint8Array([9, 1, 1])), TamperedRecordError);
  });

  it('fails on any flipped byte, naming only the seq', () => {
    const rec = sealer.seal(77, readings.slice(0, 3));
    for (let i = 0; i < rec.bytes.length; i++) {
      const bytes = Uint8Array.from(rec.bytes);
      bytes[i]! ^= 0x01;
      assert.throws(
        () => sealer.open({ ...rec, bytes }),
        (err: unknown) => {
          assert.ok(err instanceof TamperedRecordError, `byte ${i}`);
          assert.equal(err.code, 'EDGEGW_E_QUEUE_TAMPERED');
          assert.equal(err.seq, 77);
          assert.equal(err.message, 'queue record seq 77 failed authentication');
          return true;
        },
      );
    }
  });

  it('fails when moved to another seq, truncated or opened with another key', async () => {
    const rec = sealer.seal(100, readings);
    assert.throws(() => sealer.open({ ...rec, seq: 101 }), TamperedRecordError);
    assert.throws(() => sealer.open({ ...rec, bytes: rec.bytes.subarray(0, 20) }), TamperedRecordError);
    const other = await Sealer.create(randomBytes(32));
    assert.throws(() => other.open(rec), TamperedRecordError);
  });

  it('keeps its own copy of the key, so the caller may wipe it', async () => {
    const key = randomBytes(32);
    const s = await Sealer.create(key);
    const rec = s.seal(1, readings);
    key.fill(0);
    assert.equal(s.open(rec).readings.length, readings.length);
  });

  it('refuses an empty record and a key of the wrong size', async () => {
    assert.throws(() => sealer.seal(1, []), RangeError);
    await assert.rejects(Sealer.create(new Uint8Array(16)), { code: 'EDGEGW_E_KEY_READ' });
  });

  it('adds 40 bytes or less per record (header, stored nonce, tag, key)', () => {
    const one = [{ sensor: 's', ts: 1_764_380_000_000, value: 1, quality: 'good' as const }];
    const plain = 1 /* id count */ + 3 /* id */ + 1 + 1 + 1 + 1; /* tag, index, dt, value */
    const overhead = sealer.seal(1, one).bytes.length - plain + 8; /* LevelDB key */
    assert.ok(overhead <= 40, `overhead ${overhead}`);
  });
  describe('compact records (format 4: no stored nonce)', () => {
    const ids = SITE_IDS;
    const indexOf = (id: string): number => ids.indexOf(id);
    const idOf = (i: number): string | undefined => ids[i];
    const salt = randomBytes(16);
    const salts = (): Uint8Array => salt;

    it('opens with the salt it was sealed with, and with no other (or none)', () => {
      const rec = sealer.sealCompact(41, readings, indexOf, salt);
      assert.equal(recordFormat(rec.bytes), COMPACT_FORMAT_VERSION);
      assert.deepEqual(parseSealedHeader(41, rec.bytes), rec);
      assert.deepEqual(sealer.open(rec, idOf, salts).readings, readings);
      assert.throws(() => sealer.open(rec, idOf, () => randomBytes(16)), TamperedRecordError);
      assert.throws(() => sealer.open(rec, idOf, () => undefined), TamperedRecordError);
      assert.throws(() => sealer.open(rec, idOf), TamperedRecordError);
      assert.ok(sealer.authenticates(rec, salts));
      assert.ok(!sealer.authenticates(rec));
      assert.throws(() => sealer.open({ ...rec, seq: 42 }, idOf, salts), TamperedRecordError);
    });

    it('stores header, ciphertext and tag only: 24 bytes fewer than format 3 here', () => {
      const one = readings.slice(0, 4);
      const compact = sealer.sealCompact(7, one, indexOf, salt);
      const indexed = sealer.sealIndexed(7, one, indexOf);
      // 8 bytes of stored nonce, one byte of version+count, one byte of tag+index per reading.
      assert.ok(
        indexed.bytes.length - compact.bytes.length >= 8 + 1 + 4,
        `${indexed.bytes.length} vs ${compact.bytes.length}`,
      );
    });

    it('fails on any flipped byte, the header flags and count included', () => {
      const rec = sealer.sealCompact(77, readings.slice(0, 3), indexOf, salt);
      for (let i = 0; i < rec.bytes.length; i++) {
        for (const bit of [0x01, 0x80]) {
          const bytes = Uint8Array.from(rec.bytes);
          bytes[i]! ^= bit;
          assert.throws(() => sealer.open({ ...rec, bytes }, idOf, salts), TamperedRecordError, `byte ${i}`);
        }
      }
    });

    it('carries a count past 63 the long way, and refuses a short count written long', () => {
      const many = siteReadings(SITE_IDS, 30, prng(5));
      assert.ok(many.length > 63);
      const rec = sealer.sealCompact(9, many, indexOf, salt);
      assert.equal(rec.bytes[0]! & 0x3f, 0);
      assert.equal(parseSealedHeader(9, rec.bytes).count, many.length);
      assert.deepEqual(sealer.open(rec, idOf, salts).readings, many);
      // 0x40 (count follows) with a count of 3: not how this build writes 3.
      const forged = Uint8Array.of(0x40, 3, 1, ...new Uint8Array(20));
      assert.throws(() => parseSealedHeader(9, forged), TamperedRecordError);
    });

    it('two seqs under one salt, or one seq under two salts, never share a nonce', () => {
      // Equal plaintext, equal header: the ciphertexts differ only because the nonces do.
      const same = readings.slice(0, 2);
      const a = sealer.sealCompact(5, same, indexOf, salt);
      const b = sealer.sealCompact(6, same, indexOf, salt);
      const c = sealer.sealCompact(5, same, indexOf, randomBytes(16));
      const d = sealer.sealCompact(5, same, indexOf, salt);
      assert.notDeepEqual(a.bytes, b.bytes);
      assert.notDeepEqual(a.bytes, c.bytes);
      assert.deepEqual(a.bytes, d.bytes, 'the nonce is salt and seq, nothing random');
    });
  });

  it('a sealed file opens only for its purpose, and a dictionary entry never opens as a file', () => {
    const keyId = 'ab'.repeat(16);
    const plain = new TextEncoder().encode('{"overlay":{}}');
    const sealed = sealer.sealFile('edgegw-sealed-overlay-1', plain, keyId);
    assert.deepEqual(sealer.openFile('edgegw-sealed-overlay-1', sealed), plain);
    assert.equal(sealer.openFile('another-file', sealed), null);
    // A dictionary entry has the same layout and version byte: only the associated data tells them apart.
    assert.equal(sealer.openFile('edgegw-sealed-overlay-1', sealer.sealId(0, 'sensor-1', keyId)), null);
    const other = Uint8Array.from(sealed);
    other[0] = 2; // a version no build wrote
    assert.equal(sealer.openFile('edgegw-sealed-overlay-1', other), null);
  });
});
