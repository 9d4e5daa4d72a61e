// From one block's response to each sensor's raw words (or bits) and its value at sensor
// precision: decoded per type and ordering, then value = raw * scale + offset, rounded to
// `decimals` when set. float32 leaves as its shortest decimal (21.6, not 21.600000381469727).

import type { ModbusSensorConfig } from '../../config/schema.js';
import { encodable, scaleValue } from '../value.js';
import { decodeRegisters } from './decode.js';
import { isBitTable, sensorType, sensorWidth, type ReadBlock } from './plan.js';

export interface Extracted {
  /** The sensor's own register words, or its bit as 0/1. */
  readonly raw: number[];
  /** null when the registers hold no number (NaN or infinity in a float). */
  readonly value: number | boolean | null;
}

export function extract(
  sensor: ModbusSensorConfig,
  block: ReadBlock,
  data: readonly (number | boolean)[],
): Extracted {
  const from = sensor.address - block.start;
  const slice = data.slice(from, from + sensorWidth(sensor));
  if (isBitTable(sensor.table)) {
    const bit = slice[0] === true || slice[0] === 1;
    return { raw: [bit ? 1 : 0], value: bit };
  }
  const words = slice.map((w) => Number(w) & 0xffff);
  const type = sensorType(sensor);
  const raw = decodeRegisters(words, { type, wordOrder: sensor.wordOrder, byteOrder: sensor.byteOrder });
  if (type === 'bool') return { raw: words, value: raw !== 0 };
  if (!Number.isFinite(raw)) return { raw: words, value: null };
  const transform = { scale: sensor.scale, offset: sensor.offset, decimals: sensor.decimals };
  // A finite raw value can still scale past the largest double (1e300 * scale 1e10).
  return { raw: words, value: encodable(scaleValue(raw, transform, type === 'float32')) };
}

/** The value a bad reading carries: 0, or false for a bit. Never an old value (DESIGN.md §4). */
export function badValue(sensor: ModbusSensorConfig): number | boolean {
  return sensorType(sensor) === 'bool' ? false : 0;
}
