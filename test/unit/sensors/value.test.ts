// Values that cannot be carried (NaN, ±Infinity) never leave a driver as good readings.

import assert from 'node:assert/strict';
import type { ModbusSensorConfig } from '../../../src/config/schema.js';
import { encodeValue } from '../../../src/sensors/modbus/decode.js';
import { extract } from '../../../src/sensors/modbus/extract.js';
import { planReads } from '../../../src/sensors/modbus/plan.js';
import { BAD_VALUE, encodable, scaleValue } from '../../../src/sensors/value.js';

const f64 = (over: Partial<ModbusSensorConfig> = {}): ModbusSensorConfig => ({
  id: 'big',
  bus: 'b',
  unitId: 1,
  table: 'holding',
  address: 0,
  type: 'float64',
  wordOrder: 'big',
  byteOrder: 'big',
  scale: 1,
  offset: 0,
  every: 1000,
  ...over,
});

describe('sensor values', () => {
  it('encodable keeps finite numbers and refuses NaN and ±Infinity', () => {
    for (const x of [0, -0, 21.6, -1e308, Number.MAX_VALUE]) assert.ok(Object.is(encodable(x), x));
    for (const x of [NaN, Infinity, -Infinity]) assert.equal(encodable(x), null);
    assert.equal(BAD_VALUE, 0);
  });

  it('scaling a finite float64 past the largest double is no value, not Infinity', () => {
    assert.equal(scaleValue(1e300, { scale: 1e10, offset: 0 }), Infinity); // why extract must check
    const s = f64({ scale: 1e10 });
    const [block] = planReads([s], { maxGap: 0 });
    const words = encodeValue(1e300, { type: 'float64', wordOrder: 'big', byteOrder: 'big' });
    assert.equal(extract(s, block!, words).value, null);
    assert.equal(extract(f64({ scale: 2 }), block!, words).value, 2e300);
    const inf = encodeValue(-Infinity, { type: 'float64', wordOrder: 'big', byteOrder: 'big' });
    assert.equal(extract(f64(), block!, inf).value, null);
  });
});
