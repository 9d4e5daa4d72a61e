// Deterministic readings for seal and queue tests: a seeded PRNG, realistic sensor ids and values.

import type { Quality, Reading } from '../../src/types.js';

/** mulberry32: small, seeded, good enough for test data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Twenty plausible ids of about 12 characters, as a site would name them. */
export const SITE_IDS = [
  'boiler-temp',
  'boiler-press',
  'boiler-flow',
  'ahu1-supply-t',
  'ahu1-return-t',
  'ahu1-fan-hz',
  'ahu2-supply-t',
  'ahu2-return-t',
  'ahu2-fan-hz',
  'chiller-kw',
  'chiller-cop',
  'tank1-level',
  'tank2-level',
  'pump1-amps',
  'pump2-amps',
  'main-meter-kw',
  'outdoor-temp',
  'outdoor-rh',
  'door-1',
  'door-2',
];

/** Twenty random 12-character ids (no shared structure: the worst case for the id table). */
export function randomIds(rand: () => number, n = 20): string[] {
  const chars = 'abcdefghijklmnopqrstuvwxyz0123456789-';
  return Array.from({ length: n }, () =>
    Array.from({ length: 12 }, () => chars[Math.floor(rand() * chars.length)]).join(''),
  );
}

/**
 * `seconds` seconds of 1 Hz readings of every id: polled in turn (~15 ms apart), float values
 * with one or two decimals walking slowly (as shortest-decimal float32 registers read), the
 * `door-*` ones boolean, now and then a bad reading.
 */
export function siteReadings(
  ids: readonly string[],
  seconds: number,
  rand: () => number,
  t0 = 1_764_380_000_000,
) {
  const level = ids.map(() => 10 + rand() * 90);
  const out: Reading[] = [];
  for (let s = 0; s < seconds; s++) {
    ids.forEach((sensor, i) => {
      const ts = t0 + s * 1000 + i * 15 + Math.floor(rand() * 4);
      const quality: Quality = rand() < 0.01 ? 'bad' : 'good';
      if (sensor.startsWith('door')) {
        out.push({ sensor, ts, value: rand() < 0.1, quality });
        return;
      }
      level[i] = level[i]! + (rand() - 0.5);
      const decimals = i % 3 === 0 ? 2 : 1;
      out.push({ sensor, ts, value: Number(level[i].toFixed(decimals)), quality });
    });
  }
  return out;
}
