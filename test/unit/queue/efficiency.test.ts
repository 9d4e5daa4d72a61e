// DESIGN.md §7: at most 12 bytes per reading on disk for typical readings (float values, 1 Hz,
// ids of ~12 characters). "On disk" here is stored LevelDB key + value bytes: the records (queue
// `bytes`) and the sensor-id dictionary they refer to, sealed as the daemon seals (format 3).

import assert from 'node:assert/strict';
import { SITE_IDS, prng, randomIds, siteReadings } from '../../helpers/readings.js';
import { queueFixture } from '../../helpers/queue.js';
import type { Reading } from '../../../src/types.js';

async function bytesPerReading(ids: readonly string[], recordSeconds: number): Promise<number> {
  const fx = await queueFixture();
  const q = fx.make({ durability: 'os', ...fx.indexed });
  await q.start();
  try {
    const rand = prng(2024);
    const all = siteReadings(ids, 600, rand);
    const perRecord = Math.round(ids.length * recordSeconds);
    for (let i = 0; i < all.length; i += perRecord) {
      const chunk: Reading[] = all.slice(i, i + perRecord);
      await q.append(chunk);
    }
    const s = q.stats();
    assert.equal(s.readings, all.length);
    return (s.bytes + q.sensorIdBytes()) / s.readings;
  } finally {
    await q.stop();
    await fx.cleanup();
  }
}

describe('queue efficiency (20 sensors at 1 Hz, ~12-character ids)', () => {
  const figures: string[] = [];
  after(() => {
    // One line for the record: the bytes per reading this build stores.
    console.log(`      on-disk bytes/reading: ${figures.join(', ')}`);
  });

  it('stores at most 12 bytes per reading with records of 5 s (100 readings)', async () => {
    const site = await bytesPerReading(SITE_IDS, 5);
    const random = await bytesPerReading(randomIds(prng(9)), 5);
    figures.push(`5 s records: ${site.toFixed(2)} (site ids), ${random.toFixed(2)} (random ids)`);
    assert.ok(site <= 12, `${site.toFixed(2)} bytes/reading`);
    assert.ok(random <= 12, `${random.toFixed(2)} bytes/reading`);
  });

  // Records carry dictionary indices, not ids (a per-record id table cost 1 s records ~13 bytes
  // per reading for random 12-character ids): what the ids look like no longer matters.
  it('stores at most 12 bytes per reading with records of 1 s (20 readings), whatever the ids', async () => {
    const site = await bytesPerReading(SITE_IDS, 1);
    const random = await bytesPerReading(randomIds(prng(9)), 1);
    figures.push(`1 s records: ${site.toFixed(2)} (site ids), ${random.toFixed(2)} (random ids)`);
    assert.ok(site <= 12, `${site.toFixed(2)} bytes/reading`);
    assert.ok(random <= 12, `${random.toFixed(2)} bytes/reading`);
  });

  // 200 ms records (the default flush, 4 readings when sensors poll at spread phases): the fixed
  // 40 bytes of a record (key 8, header 8, nonce 8, tag 16) are 10 of these bytes per reading.
  it('stores records of 200 ms (4 readings) in under 17 bytes per reading (29 with an id table)', async () => {
    const site = await bytesPerReading(SITE_IDS, 0.2);
    const random = await bytesPerReading(randomIds(prng(9)), 0.2);
    figures.push(`200 ms records: ${site.toFixed(2)} (site ids), ${random.toFixed(2)} (random ids)`);
    assert.ok(site < 17, `${site.toFixed(2)} bytes/reading`);
    assert.ok(random < 17, `${random.toFixed(2)} bytes/reading`);
  });
});
