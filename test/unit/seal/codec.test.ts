import assert from 'node:assert/strict';
import {
  compactForm,
  decodeIndexedBody,
  decodeReadings,
  encodeIndexedBody,
  encodeReadings,
  indicesOf,
} from '../../../src/seal/codec.js';
import type { Quality, Reading } from '../../../src/types.js';
import { SITE_IDS, prng, siteReadings } from '../../helpers/readings.js';

function assertSame(actual: readonly Reading[], expected: readonly Reading[]): void {
  assert.equal(actual.length, expected.length);
  expected.forEach((e, i) => {
    const a = actual[i]!;
    assert.equal(a.sensor, e.sensor, `sensor of reading ${i}`);
    assert.equal(a.ts, e.ts, `ts of reading ${i}`);
    assert.equal(a.quality, e.quality, `quality of reading ${i}`);
    assert.ok(
      Object.is(a.value, e.value),
      `value of reading ${i}: ${String(a.value)} !== ${String(e.value)}`,
    );
  });
}

function randomValue(rand: () => number): number | boolean {
  const pick = Math.floor(rand() * 10);
  const scale = 10 ** Math.floor(rand() * 12 - 4);
  switch (pick) {
    case 0:
      return rand() < 0.5;
    case 1:
      return Math.floor((rand() - 0.5) * 2 ** 20);
    case 2:
      return Math.floor((rand() - 0.5) * 2 * Number.MAX_SAFE_INTEGER);
    case 3:
      return Number(((rand() - 0.5) * 2000).toFixed(Math.floor(rand() * 7)));
    case 4:
      return Math.fround((rand() - 0.5) * scale);
    case 5:
      return (rand() - 0.5) * scale;
    case 6:
      return [0, -0, 5e-324, -5e-324, Number.MAX_VALUE, -Number.MAX_VALUE, 0.1, 0.3, 1e21, 123456.789][
        Math.floor(rand() * 10)
      ]!;
    case 7:
      return Number(Math.fround(rand() * 500).toPrecision(7));
    default:
      return Number((rand() * 100 - 20).toFixed(1));
  }
}

describe('seal/codec', () => {
  it('round-trips 20,000 random readings exactly (values by Object.is)', () => {
    const rand = prng(42);
    const qualities: Quality[] = ['good', 'bad', 'stale'];
    const ids = ['a', 'ab', 'abc', 'b', 'températur-ü', '温度-1', 'x'.repeat(200), ''];
    for (let rec = 0; rec < 200; rec++) {
      const base = 1_700_000_000_000 + Math.floor(rand() * 1e10);
      const readings: Reading[] = Array.from({ length: 1 + Math.floor(rand() * 199) }, () => ({
        sensor: ids[Math.floor(rand() * ids.length)]!,
        ts: base + Math.floor(rand() * (rand() < 0.1 ? 1e9 : 5000)),
        value: randomValue(rand),
        quality: qualities[Math.floor(rand() * 3)]!,
      }));
      const decoded = decodeReadings(encodeReadings(readings));
      assert.equal(decoded.t0, Math.min(...readings.map((r) => r.ts)));
      assertSame(decoded.readings, readings);
    }
  });

  it('the compact body round-trips every kind, quality and index, with the first delta left out or not', () => {
    const rand = prng(43);
    const qualities: Quality[] = ['good', 'bad', 'stale', 'unsynced'];
    // Indices past 31 and values with e ≥ 4 take the long form; the rest mostly the short one.
    const ids = Array.from({ length: 300 }, (_, i) => `sensor-${i}`);
    const index = new Map(ids.map((id, i) => [id, i]));
    let firstOmitted = 0;
    for (let rec = 0; rec < 300; rec++) {
      const base = 1_700_000_000_000 + Math.floor(rand() * 1e10);
      const readings: Reading[] = Array.from({ length: 1 + Math.floor(rand() * 120) }, () => ({
        sensor: ids[Math.floor(rand() * (rand() < 0.5 ? 32 : ids.length))]!,
        ts: base + Math.floor(rand() * (rand() < 0.1 ? 1e9 : 5000)),
        value: randomValue(rand),
        quality: rand() < 0.7 ? 'good' : qualities[Math.floor(rand() * 4)]!,
      }));
      const t0 = Math.min(...readings.map((r) => r.ts));
      const form = compactForm(readings, t0);
      if (form.firstAtT0) firstOmitted++;
      const body = encodeIndexedBody(readings, t0, (id) => index.get(id)!, form);
      assertSame(
        decodeIndexedBody(body, readings.length, t0, (i) => ids[i], form),
        readings,
      );
      assert.deepEqual(
        indicesOf(body, readings.length, t0, form),
        new Set(readings.map((r) => index.get(r.sensor))),
      );
      // Read with the other form, the bytes do not decode as these readings.
      const other = { compact: true, firstAtT0: !form.firstAtT0 };
      let same = false;
      try {
        const back = decodeIndexedBody(body, readings.length, t0, (i) => ids[i], other);
        same = back.every((r, i) => r.ts === readings[i]!.ts && Object.is(r.value, readings[i]!.value));
      } catch {
        same = false;
      }
      assert.ok(
        !same,
        `record ${rec} read the same with the first delta ${form.firstAtT0 ? 'present' : 'left out'}`,
      );
    }
    assert.ok(
      firstOmitted > 0 && firstOmitted < 300,
      `first reading at t0 in ${firstOmitted} of 300 records`,
    );
  });

  it('the compact body spends one byte on tag and index for a typical reading, and refuses a bad quality byte', () => {
    const ts = 1_764_380_000_000;
    const index = (id: string): number => Number(id.slice(1));
    const typical: Reading[] = [
      { sensor: 's3', ts, value: 21.6, quality: 'good' },
      { sensor: 's31', ts: ts + 50, value: 99.25, quality: 'good' },
    ];
    const form = compactForm(typical, ts);
    assert.ok(form.firstAtT0);
    // s3: tag+index 1, m=216 2 (no delta); s31: tag+index 1, delta 1, m=9925 2.
    assert.equal(encodeIndexedBody(typical, ts, index, form).length, 7);
    const indexed = encodeIndexedBody(typical, ts, index);
    assert.equal(indexed.length, 10);
    const bad: Reading[] = [{ sensor: 's1', ts, value: 5, quality: 'stale' }];
    const body = Uint8Array.from(encodeIndexedBody(bad, ts, index, compactForm(bad, ts)));
    assert.equal(body[0]! & 0xc0, 0x40, 'long form, quality byte follows');
    assert.equal(body[1], 2);
    body[1] = 0;
    assert.throws(() => decodeIndexedBody(body, 1, ts, (i) => `s${i}`, compactForm(bad, ts)), RangeError);
  });

  it('every encoding is its own bytes: one shared writer, and a later record does not overwrite an earlier', () => {
    const a = siteReadings(SITE_IDS, 5, prng(11));
    const b = siteReadings(SITE_IDS, 40, prng(12)); // larger: the shared buffer grows
    const first = encodeReadings(a);
    const copy = Uint8Array.from(first);
    const second = encodeReadings(b);
    assert.deepEqual(first, copy);
    assert.notEqual(first.buffer, second.buffer);
    assertSame(decodeReadings(first).readings, a);
    assertSame(decodeReadings(second).readings, b);
  });

  it('a batch formed in place (a holey array, as the Batcher makes) encodes as the same readings packed', () => {
    const readings = siteReadings(SITE_IDS, 5, prng(13));
    const holey = new Array<Reading>(readings.length + 50);
    readings.forEach((r, i) => (holey[i] = r));
    holey.length = readings.length;
    const index = new Map(SITE_IDS.map((id, i) => [id, i]));
    const t0 = Math.min(...readings.map((r) => r.ts));
    const packed = encodeIndexedBody(readings, t0, (id) => index.get(id)!);
    assert.deepEqual(
      encodeIndexedBody(holey, t0, (id) => index.get(id)!),
      packed,
    );
    assertSame(
      decodeIndexedBody(packed, readings.length, t0, (i) => SITE_IDS[i]),
      readings,
    );
    assert.deepEqual(encodeReadings(holey), encodeReadings(readings));
  });

  it('round-trips a realistic site record', () => {
    const readings = siteReadings(SITE_IDS, 5, prng(7));
    assertSame(decodeReadings(encodeReadings(readings)).readings, readings);
  });

  it('a value that cannot be encoded becomes 0 with quality bad, and the rest of the record is intact', () => {
    for (const value of [NaN, Infinity, -Infinity]) {
      const readings: Reading[] = [
        { sensor: 'boiler-temp', ts: 1000, value: 21.5, quality: 'good' },
        { sensor: 'broken', ts: 1000, value, quality: 'good' },
        { sensor: 'door-1', ts: 1010, value: true, quality: 'stale' },
        { sensor: 'boiler-temp', ts: 2000, value: 21.6, quality: 'good' },
      ];
      const decoded = decodeReadings(encodeReadings(readings)).readings;
      assertSame(decoded, [
        readings[0]!,
        { sensor: 'broken', ts: 1000, value: 0, quality: 'bad' },
        readings[2]!,
        readings[3]!,
      ]);
    }
  });

  it('refuses timestamps that are not integer ms', () => {
    for (const ts of [1.5, -1, 2 ** 53]) {
      assert.throws(() => encodeReadings([{ sensor: 's', ts, value: 1, quality: 'good' }]), RangeError);
    }
  });

  it('rejects truncated or padded input', () => {
    const bytes = encodeReadings(siteReadings(SITE_IDS.slice(0, 3), 2, prng(1)));
    assert.throws(() => decodeReadings(bytes.subarray(0, bytes.length - 1)), RangeError);
    const padded = new Uint8Array(bytes.length + 1);
    padded.set(bytes);
    assert.throws(() => decodeReadings(padded), RangeError);
  });

  it('spends few bytes on typical readings', () => {
    // Values of 1 Hz float sensors read as shortest decimals: 21.6 is a 2-byte mantissa.
    const one = (value: number | boolean, quality: Quality = 'good') =>
      encodeReadings([{ sensor: 's', ts: 1_764_380_000_000, value, quality }]).length;
    const base = one(true);
    assert.equal(one(false), base, 'booleans carry no payload');
    assert.equal(one(true, 'stale'), base, 'quality rides in the tag byte');
    assert.equal(one(21.6) - base, 2);
    assert.equal(one(-3.25) - base, 2);
    assert.equal(one(1013.25) - base, 3);
    assert.equal(one(Math.fround(21.6)) - base, 4, 'a raw float32 that is not a short decimal takes 4 bytes');
    assert.equal(one(Math.PI) - base, 8);

    const readings = siteReadings(SITE_IDS, 5, prng(3));
    const perReading = encodeReadings(readings).length / readings.length;
    assert.ok(perReading < 8, `plaintext ${perReading.toFixed(2)} bytes/reading`);
  });
});
