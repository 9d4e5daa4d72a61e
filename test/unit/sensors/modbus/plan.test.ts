import assert from 'node:assert/strict';
import type { ModbusSensorConfig } from '../../../../src/config/schema.js';
import {
  MAX_READ_BITS,
  MAX_READ_REGISTERS,
  describeRange,
  planReads,
  sensorWidth,
  type ReadBlock,
} from '../../../../src/sensors/modbus/plan.js';

function sensor(id: string, over: Partial<ModbusSensorConfig>): ModbusSensorConfig {
  return {
    id,
    bus: 'b',
    unitId: 1,
    table: 'holding',
    address: 0,
    wordOrder: 'big',
    byteOrder: 'big',
    scale: 1,
    offset: 0,
    every: 1000,
    ...over,
  };
}

const shape = (blocks: ReadBlock[]) =>
  blocks.map((b) => `${b.unitId}/${b.table}/${b.start}+${b.count}:${b.sensors.map((s) => s.id).join(',')}`);

describe('modbus planReads', () => {
  it('coalesces neighbours into one request and keeps types in mind', () => {
    const demo = [
      sensor('energy', { address: 4, type: 'uint32' }),
      sensor('temp', { address: 0, type: 'float32' }),
      sensor('speed', { address: 2 }),
    ];
    assert.deepEqual(shape(planReads(demo, { maxGap: 1 })), ['1/holding/0+6:temp,speed,energy']);
    // Address 3 is unused: with no gap allowed it splits the read.
    assert.deepEqual(shape(planReads(demo, { maxGap: 0 })), [
      '1/holding/0+3:temp,speed',
      '1/holding/4+2:energy',
    ]);
  });

  it('bridges gaps up to maxGap and no further', () => {
    const s = [sensor('a', { address: 0 }), sensor('b', { address: 9 }), sensor('c', { address: 19 })];
    assert.deepEqual(shape(planReads(s, { maxGap: 8 })), ['1/holding/0+10:a,b', '1/holding/19+1:c']);
    assert.deepEqual(shape(planReads(s, { maxGap: 9 })), ['1/holding/0+20:a,b,c']);
    assert.deepEqual(shape(planReads(s, { maxGap: 7 })), [
      '1/holding/0+1:a',
      '1/holding/9+1:b',
      '1/holding/19+1:c',
    ]);
  });

  it('never mixes units or tables', () => {
    const blocks = planReads(
      [
        sensor('h1', { address: 0 }),
        sensor('i1', { address: 1, table: 'input' }),
        sensor('h2', { address: 1, unitId: 2 }),
        sensor('c1', { address: 0, table: 'coil' }),
        sensor('d1', { address: 1, table: 'discrete' }),
      ],
      { maxGap: 8 },
    );
    assert.deepEqual(shape(blocks), [
      '1/coil/0+1:c1',
      '1/discrete/1+1:d1',
      '1/holding/0+1:h1',
      '1/input/1+1:i1',
      '2/holding/1+1:h2',
    ]);
  });

  it('respects the 125-register limit, even for a value that would straddle it', () => {
    const s = [sensor('a', { address: 0 }), sensor('b', { address: 123, type: 'float32' })];
    assert.deepEqual(shape(planReads(s, { maxGap: 124 })), ['1/holding/0+125:a,b']);
    const t = [sensor('a', { address: 0 }), sensor('b', { address: 124, type: 'float32' })];
    assert.deepEqual(shape(planReads(t, { maxGap: 124 })), ['1/holding/0+1:a', '1/holding/124+2:b']);
    const many = Array.from({ length: 300 }, (_, i) => sensor(`r${i}`, { address: i }));
    const blocks = planReads(many, { maxGap: 0 });
    assert.deepEqual(
      blocks.map((b) => b.count),
      [MAX_READ_REGISTERS, MAX_READ_REGISTERS, 50],
    );
    assert.equal(
      blocks.reduce((n, b) => n + b.sensors.length, 0),
      300,
    );
  });

  it('respects the 2000-bit limit for coils', () => {
    const s = [sensor('a', { table: 'coil', address: 0 }), sensor('b', { table: 'coil', address: 1999 })];
    const t = [sensor('a', { table: 'coil', address: 0 }), sensor('b', { table: 'coil', address: 2000 })];
    assert.deepEqual(shape(planReads(s, { maxGap: 2000 })), ['1/coil/0+2000:a,b']);
    assert.deepEqual(shape(planReads(t, { maxGap: 2000 })), ['1/coil/0+1:a', '1/coil/2000+1:b']);
    assert.equal(MAX_READ_BITS, 2000);
  });

  it('serves overlapping and duplicate addresses from one read', () => {
    const s = [
      sensor('f', { address: 10, type: 'float32' }),
      sensor('hi', { address: 10 }),
      sensor('lo', { address: 11 }),
    ];
    assert.deepEqual(shape(planReads(s, { maxGap: 0 })), ['1/holding/10+2:hi,f,lo']);
  });

  it('defaults the type from the table', () => {
    assert.equal(sensorWidth(sensor('c', { table: 'coil' })), 1);
    assert.equal(sensorWidth(sensor('h', { table: 'holding' })), 1);
    assert.equal(sensorWidth(sensor('u', { type: 'uint64' })), 4);
  });

  it('describes ranges for the technician', () => {
    assert.equal(describeRange(1, 'holding', 0, 2), 'unit 1 holding 0..1');
    assert.equal(describeRange(3, 'input', 7, 1), 'unit 3 input 7');
  });
});
