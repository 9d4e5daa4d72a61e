// Sealed bytes per reading of a typical site, record format 1 (an id table in every record) against
// format 3 (indices into the queue's sealed sensor-id dictionary) and format 4 (compact: indices,
// no stored nonce, tag and index in a byte). Not part of `npm run bench`: it
// seals in memory, with no LevelDB, in a second or so.
//
//   node dist/bench/record-bytes.js [flushMs=200] [minutes=60]
//
// 20 sensors at 1 Hz with 12-character ids, records of `flushMs` (what the Batcher forms), phases
// spread over the second or aligned; values either at the sensor's precision (1-2 decimals, what
// a float32 register scaled with `decimals` gives) or raw float32 (shortest round trip, ~7
// digits). Bytes = LevelDB key (8) + sealed value per record, plus, for formats 3 and 4, the
// dictionary entries (key + value) amortised over every reading.

import { randomBytes } from 'node:crypto';
import { Keyring } from '../src/seal/keyring.js';
import { Sealer } from '../src/seal/sealer.js';
import { SensorIds } from '../src/seal/sensor-ids.js';
import { shortestFloat32 } from '../src/sensors/value.js';
import type { Reading } from '../src/types.js';
import { makeSensors, takeReadings } from './readings.js';

const KEY_BYTES = 8;

function records(readings: readonly Reading[], flushMs: number): Reading[][] {
  const out: Reading[][] = [];
  let window = -1;
  for (const r of readings) {
    const w = Math.floor(r.ts / flushMs);
    if (w !== window) out.push([]);
    window = w;
    out[out.length - 1]!.push(r);
  }
  return out;
}

async function measure(readings: readonly Reading[], flushMs: number): Promise<string> {
  const key = randomBytes(32);
  const sealer = await Sealer.create(key);
  const ring = await Keyring.fromKeys({ key, file: 'record-bytes' });
  const ids = new SensorIds();
  const recs = records(readings, flushMs);
  const salt = randomBytes(16);
  const indexOf = (sensor: string): number => ids.indexFor(sensor, ring);
  let v1 = 0;
  let v3 = 0;
  let v4 = 0;
  recs.forEach((rs, i) => {
    v1 += KEY_BYTES + sealer.seal(i + 1, rs).bytes.length;
    v3 += KEY_BYTES + sealer.sealIndexed(i + 1, rs, indexOf).bytes.length;
    const rec = sealer.sealCompact(i + 1, rs, indexOf, salt);
    v4 += KEY_BYTES + rec.bytes.length;
    // Every one opens again to the same readings (the figures are of records that work).
    const back = sealer.open(
      rec,
      (k) => ids.idOf(k, ring),
      () => salt,
    ).readings;
    if (JSON.stringify(back) !== JSON.stringify(rs)) throw new Error(`record ${i + 1} does not round trip`);
  });
  const dict = ids.size * KEY_BYTES + ids.valueBytes;
  const n = readings.length;
  const perRec = (n / recs.length).toFixed(1);
  return (
    `${perRec} readings/record: format 1 ${(v1 / n).toFixed(2)} B/reading, ` +
    `format 3 ${((v3 + dict) / n).toFixed(2)} B/reading, format 4 ${((v4 + dict) / n).toFixed(2)} B/reading ` +
    `(dictionary ${ids.size} entries, ${dict} B)`
  );
}

async function main(): Promise<void> {
  const flushMs = Number(process.argv[2] ?? 200);
  const minutes = Number(process.argv[3] ?? 60);
  const count = minutes * 60 * 20;
  const start = Date.UTC(2025, 0, 1);
  for (const phases of ['spread', 'aligned'] as const) {
    const decimals = takeReadings(makeSensors(20), start, 1000, count, phases);
    // A raw float32 register: the same walk, every digit the float32 holds.
    const raw = decimals.map((r) => ({
      ...r,
      value: shortestFloat32(Math.fround((r.value as number) + Math.random() / 100)),
    }));
    process.stdout.write(
      `${flushMs} ms records, ${phases} phases, 1-2 decimals: ${await measure(decimals, flushMs)}\n`,
    );
    process.stdout.write(
      `${flushMs} ms records, ${phases} phases, raw float32: ${await measure(raw, flushMs)}\n`,
    );
  }
}

await main();
