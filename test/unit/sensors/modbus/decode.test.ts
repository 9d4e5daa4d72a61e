// Register words computed by hand from the IEEE 754 / two's complement bytes, for every ordering.

import assert from 'node:assert/strict';
import type { DataTypeName } from '../../../../src/config/schema.js';
import {
  decodeRegisters,
  encodeValue,
  registerCount,
  type Order,
} from '../../../../src/sensors/modbus/decode.js';
import { scaleValue } from '../../../../src/sensors/value.js';

type Orders = [wordOrder: Order, byteOrder: Order];
const ABCD: Orders = ['big', 'big'];
const CDAB: Orders = ['little', 'big'];
const BADC: Orders = ['big', 'little'];
const DCBA: Orders = ['little', 'little'];

interface Case {
  type: DataTypeName;
  value: number | bigint;
  decoded: number;
  words: [Orders, number[]][];
}

const CASES: Case[] = [
  {
    // 21.6 as float32 = 0x41ACCCCD
    type: 'float32',
    value: 21.6,
    decoded: Math.fround(21.6),
    words: [
      [ABCD, [0x41ac, 0xcccd]],
      [CDAB, [0xcccd, 0x41ac]],
      [BADC, [0xac41, 0xcdcc]],
      [DCBA, [0xcdcc, 0xac41]],
    ],
  },
  {
    // -1234.5 as float64 = 0xC0934A00_00000000
    type: 'float64',
    value: -1234.5,
    decoded: -1234.5,
    words: [
      [ABCD, [0xc093, 0x4a00, 0x0000, 0x0000]],
      [CDAB, [0x0000, 0x0000, 0x4a00, 0xc093]],
      [BADC, [0x93c0, 0x004a, 0x0000, 0x0000]],
      [DCBA, [0x0000, 0x0000, 0x004a, 0x93c0]],
    ],
  },
  {
    // 21.6 as float64 = 0x40359999_9999999A
    type: 'float64',
    value: 21.6,
    decoded: 21.6,
    words: [
      [ABCD, [0x4035, 0x9999, 0x9999, 0x999a]],
      [CDAB, [0x999a, 0x9999, 0x9999, 0x4035]],
      [BADC, [0x3540, 0x9999, 0x9999, 0x9a99]],
      [DCBA, [0x9a99, 0x9999, 0x9999, 0x3540]],
    ],
  },
  {
    // 0x0001_0002_0003_0004
    type: 'uint64',
    value: 0x0001_0002_0003_0004n,
    decoded: 281483566841860,
    words: [
      [ABCD, [0x0001, 0x0002, 0x0003, 0x0004]],
      [CDAB, [0x0004, 0x0003, 0x0002, 0x0001]],
      [BADC, [0x0100, 0x0200, 0x0300, 0x0400]],
      [DCBA, [0x0400, 0x0300, 0x0200, 0x0100]],
    ],
  },
  {
    // -0x0001_0002_0003_0004 in two's complement = 0xFFFE_FFFD_FFFC_FFFC
    type: 'int64',
    value: -281483566841860,
    decoded: -281483566841860,
    words: [
      [ABCD, [0xfffe, 0xfffd, 0xfffc, 0xfffc]],
      [CDAB, [0xfffc, 0xfffc, 0xfffd, 0xfffe]],
      [BADC, [0xfeff, 0xfdff, 0xfcff, 0xfcff]],
      [DCBA, [0xfcff, 0xfcff, 0xfdff, 0xfeff]],
    ],
  },
  {
    type: 'uint32',
    value: 0x12345678,
    decoded: 305419896,
    words: [
      [ABCD, [0x1234, 0x5678]],
      [CDAB, [0x5678, 0x1234]],
      [BADC, [0x3412, 0x7856]],
      [DCBA, [0x7856, 0x3412]],
    ],
  },
  {
    // -2 = 0xFFFFFFFE
    type: 'int32',
    value: -2,
    decoded: -2,
    words: [
      [ABCD, [0xffff, 0xfffe]],
      [CDAB, [0xfffe, 0xffff]],
      [BADC, [0xffff, 0xfeff]],
      [DCBA, [0xfeff, 0xffff]],
    ],
  },
  {
    // -300 = 0xFED4; word order means nothing for one register
    type: 'int16',
    value: -300,
    decoded: -300,
    words: [
      [ABCD, [0xfed4]],
      [CDAB, [0xfed4]],
      [BADC, [0xd4fe]],
      [DCBA, [0xd4fe]],
    ],
  },
  {
    type: 'uint16',
    value: 0xbeef,
    decoded: 0xbeef,
    words: [
      [ABCD, [0xbeef]],
      [BADC, [0xefbe]],
    ],
  },
];

const name = ([w, b]: Orders): string =>
  ({ 'big big': 'ABCD', 'little big': 'CDAB', 'big little': 'BADC', 'little little': 'DCBA' })[`${w} ${b}`] ??
  '?';

describe('modbus decode', () => {
  for (const c of CASES) {
    for (const [orders, words] of c.words) {
      const layout = { type: c.type, wordOrder: orders[0], byteOrder: orders[1] };
      it(`${c.type} ${String(c.value)} ${name(orders)} is ${words.map((w) => w.toString(16)).join(' ')}`, () => {
        assert.deepEqual(encodeValue(c.value, layout), words);
        assert.equal(decodeRegisters(words, layout), c.decoded);
      });
    }
  }

  it('float32 leaves the driver as the shortest decimal (21.6, not 21.600000381469727)', () => {
    const raw = decodeRegisters([0x41ac, 0xcccd], { type: 'float32', wordOrder: 'big', byteOrder: 'big' });
    assert.notEqual(raw, 21.6);
    assert.equal(scaleValue(raw, { scale: 1, offset: 0 }, true), 21.6);
  });

  it('64-bit integers beyond 2^53 round to the nearest double', () => {
    const layout = { type: 'uint64', wordOrder: 'big', byteOrder: 'big' } as const;
    const words = encodeValue(2n ** 53n + 1n, layout);
    assert.deepEqual(words, [0x0020, 0x0000, 0x0000, 0x0001]);
    assert.equal(decodeRegisters(words, layout), 2 ** 53);
    assert.equal(decodeRegisters([0xffff, 0xffff, 0xffff, 0xffff], { ...layout, type: 'int64' }), -1);
  });

  it('signed types read the sign bit, unsigned ones do not', () => {
    const l = { wordOrder: 'big', byteOrder: 'big' } as const;
    assert.equal(decodeRegisters([0x8000], { ...l, type: 'int16' }), -32768);
    assert.equal(decodeRegisters([0x8000], { ...l, type: 'uint16' }), 32768);
    assert.equal(decodeRegisters([0x8000, 0], { ...l, type: 'int32' }), -(2 ** 31));
    assert.equal(decodeRegisters([0x8000, 0], { ...l, type: 'uint32' }), 2 ** 31);
  });

  it('refuses the wrong number of registers', () => {
    assert.throws(
      () => decodeRegisters([1], { type: 'float32', wordOrder: 'big', byteOrder: 'big' }),
      /float32 needs 2 register/,
    );
  });

  it('knows the width of every type', () => {
    const widths = (
      ['bool', 'int16', 'uint16', 'int32', 'uint32', 'float32', 'int64', 'uint64', 'float64'] as const
    ).map(registerCount);
    assert.deepEqual(widths, [1, 1, 1, 2, 2, 2, 4, 4, 4]);
  });
});
