// Registers ↔ values for every Modbus data type and ordering (DESIGN.md §4).
// Registers are 16-bit words as they come off the wire. `byteOrder: little` swaps the two bytes
// inside every register; `wordOrder: little` reverses the order of all the registers (for 64-bit
// types too). Both big is ABCD: the first register holds the most significant 16 bits, high byte
// first. 64-bit integers are returned as JavaScript numbers: beyond ±2^53 they round to the
// nearest double (a counter that large loses its last digits, never its magnitude).

import type { DataTypeName } from '../../config/schema.js';
import { REGISTER_WIDTH } from '../../config/data-types.js';

export type Order = 'big' | 'little';

export interface Layout {
  readonly type: DataTypeName;
  readonly wordOrder: Order;
  readonly byteOrder: Order;
}

/** How many registers (or bits, for bool) a value of this type occupies. */
export function registerCount(type: DataTypeName): number {
  return REGISTER_WIDTH[type];
}

/** Words in wire order → big-endian bytes (ABCD…). */
function toBigEndianBytes(words: readonly number[], layout: Layout): Buffer {
  const n = registerCount(layout.type);
  if (words.length !== n) {
    throw new RangeError(`${layout.type} needs ${n} register(s), got ${words.length}`);
  }
  const ordered = layout.wordOrder === 'little' ? [...words].reverse() : words;
  const buf = Buffer.alloc(n * 2);
  ordered.forEach((w, i) => {
    const word = w & 0xffff;
    buf.writeUInt16BE(layout.byteOrder === 'little' ? swapBytes(word) : word, i * 2);
  });
  return buf;
}

/** Big-endian bytes → words in wire order (inverse of toBigEndianBytes). */
function toWireWords(buf: Buffer, layout: Layout): number[] {
  const words: number[] = [];
  for (let i = 0; i < buf.length; i += 2) {
    const w = buf.readUInt16BE(i);
    words.push(layout.byteOrder === 'little' ? swapBytes(w) : w);
  }
  return layout.wordOrder === 'little' ? words.reverse() : words;
}

function swapBytes(w: number): number {
  return ((w & 0xff) << 8) | (w >>> 8);
}

/**
 * The raw value held by `words` (no scale/offset). `bool` on registers is "non-zero".
 * float32 comes back as the exact double of the float32; value.ts shortens it. A float register
 * may hold NaN or ±Infinity, returned as is: extract.ts turns it into a bad reading (value.ts
 * `encodable`), since neither the sealed record nor the JSON wire format can carry it.
 */
export function decodeRegisters(words: readonly number[], layout: Layout): number {
  const b = toBigEndianBytes(words, layout);
  switch (layout.type) {
    case 'bool':
      return b.readUInt16BE(0) === 0 ? 0 : 1;
    case 'int16':
      return b.readInt16BE(0);
    case 'uint16':
      return b.readUInt16BE(0);
    case 'int32':
      return b.readInt32BE(0);
    case 'uint32':
      return b.readUInt32BE(0);
    case 'float32':
      return b.readFloatBE(0);
    case 'int64':
      return Number(b.readBigInt64BE(0));
    case 'uint64':
      return Number(b.readBigUInt64BE(0));
    case 'float64':
      return b.readDoubleBE(0);
  }
}

/**
 * The registers (wire order) that hold `value` in this layout: the inverse of decodeRegisters,
 * for the simulator and tests. Integers are truncated and must fit the type; 64-bit integers
 * accept a bigint for exact values beyond 2^53.
 */
export function encodeValue(value: number | bigint | boolean, layout: Layout): number[] {
  const n = registerCount(layout.type);
  const b = Buffer.alloc(n * 2);
  const num = typeof value === 'bigint' ? Number(value) : Number(value);
  switch (layout.type) {
    case 'bool':
      b.writeUInt16BE(num === 0 ? 0 : 1, 0);
      break;
    case 'int16':
      b.writeInt16BE(Math.trunc(num), 0);
      break;
    case 'uint16':
      b.writeUInt16BE(Math.trunc(num), 0);
      break;
    case 'int32':
      b.writeInt32BE(Math.trunc(num), 0);
      break;
    case 'uint32':
      b.writeUInt32BE(Math.trunc(num), 0);
      break;
    case 'float32':
      b.writeFloatBE(num, 0);
      break;
    case 'int64':
      b.writeBigInt64BE(toBigInt(value), 0);
      break;
    case 'uint64':
      b.writeBigUInt64BE(toBigInt(value), 0);
      break;
    case 'float64':
      b.writeDoubleBE(num, 0);
      break;
  }
  return toWireWords(b, layout);
}

function toBigInt(value: number | bigint | boolean): bigint {
  if (typeof value === 'bigint') return value;
  return BigInt(Math.trunc(Number(value)));
}
