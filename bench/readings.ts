// Synthetic sensors for the benchmark: 12-character ids, float values with 1 or 2 decimals.
// Every value is drawn at random (a bounded random walk per sensor): identical values would let
// LevelDB and the codec look ~7x better than real data (DESIGN.md §8).

import type { Reading } from '../src/types.js';

export interface SensorSet {
  ids: string[];
  /** Decimal places per sensor (1 or 2). */
  decimals: number[];
  /** Current value per sensor (random walk state). */
  values: number[];
}

/** `n` sensors named like `boiler-t-001` (12 characters), half with 1 decimal, half with 2. */
export function makeSensors(n: number): SensorSet {
  const ids: string[] = [];
  const decimals: number[] = [];
  const values: number[] = [];
  const kinds = ['boiler-t', 'press-in', 'humid-rm', 'flow-out', 'power-kw'];
  for (let i = 0; i < n; i++) {
    ids.push(`${kinds[i % kinds.length]!}-${String(i).padStart(3, '0')}`);
    decimals.push(i % 2 === 0 ? 1 : 2);
    values.push(10 + Math.random() * 190);
  }
  return { ids, decimals, values };
}

/** The sensor's next value: a random step, rounded to its decimals, kept in [0, 250). */
export function nextValue(s: SensorSet, i: number): number {
  const p = 10 ** s.decimals[i]!;
  let v = s.values[i]! + (Math.random() - 0.5) * 4;
  if (v < 0 || v >= 250) v = 10 + Math.random() * 190;
  v = Math.round(v * p) / p;
  s.values[i] = v;
  return v;
}

/**
 * Readings of every sensor polled every `periodMs` from `startTs`, in time order. Spread: each
 * sensor at its own phase, evenly over the period. Aligned: all on one grid (sensors the daemon
 * starts together poll on the same instants), 1 ms apart.
 */
export function* pollStream(
  s: SensorSet,
  startTs: number,
  periodMs: number,
  phases: 'spread' | 'aligned' = 'spread',
): Generator<Reading> {
  const n = s.ids.length;
  for (let k = 0; ; k++) {
    for (let i = 0; i < n; i++) {
      const ts = startTs + k * periodMs + (phases === 'spread' ? Math.floor((i * periodMs) / n) : i);
      yield { sensor: s.ids[i]!, ts, value: nextValue(s, i), quality: 'good' };
    }
  }
}

/** The first `count` readings of `pollStream`. */
export function takeReadings(
  s: SensorSet,
  startTs: number,
  periodMs: number,
  count: number,
  phases: 'spread' | 'aligned' = 'spread',
): Reading[] {
  const out: Reading[] = new Array<Reading>(count);
  const it = pollStream(s, startTs, periodMs, phases);
  for (let i = 0; i < count; i++) out[i] = it.next().value as Reading;
  return out;
}
