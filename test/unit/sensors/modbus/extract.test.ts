import assert from 'node:assert/strict';
import type { ModbusSensorConfig } from '../../../../src/config/schema.js';
import { ExponentialDelay } from '../../../../src/sensors/modbus/delay.js';
import { encodeValue } from '../../../../src/sensors/modbus/decode.js';
import { badValue, extract } from '../../../../src/sensors/modbus/extract.js';
import { classify } from '../../../../src/sensors/modbus/link.js';
import { planReads } from '../../../../src/sensors/modbus/plan.js';

function sensor(over: Partial<ModbusSensorConfig> & Pick<ModbusSensorConfig, 'address'>): ModbusSensorConfig {
  return {
    id: 's',
    bus: 'b',
    unitId: 1,
    table: 'holding',
    wordOrder: 'big',
    byteOrder: 'big',
    scale: 1,
    offset: 0,
    every: 1000,
    ...over,
  };
}

describe('modbus extract', () => {
  it("takes each sensor's own words out of a coalesced block", () => {
    const a = sensor({ id: 'a', address: 10, type: 'float32', wordOrder: 'little' });
    const b = sensor({ id: 'b', address: 13, type: 'int16', scale: 0.5, offset: 1 });
    const [block] = planReads([a, b], { maxGap: 8 });
    const data = [
      ...encodeValue(21.6, { type: 'float32', wordOrder: 'little', byteOrder: 'big' }),
      0,
      0xfffe,
    ];
    assert.deepEqual(extract(a, block!, data), { raw: [0xcccd, 0x41ac], value: 21.6 });
    assert.deepEqual(extract(b, block!, data), { raw: [0xfffe], value: 0 });
  });

  it('reads bits as booleans with raw 0/1', () => {
    const c = sensor({ table: 'coil', address: 2 });
    const [block] = planReads([sensor({ table: 'coil', address: 0 }), c], { maxGap: 8 });
    assert.deepEqual(extract(c, block!, [false, false, true]), { raw: [1], value: true });
    assert.equal(badValue(c), false);
    assert.equal(badValue(sensor({ address: 0 })), 0);
  });

  it('a float register holding NaN yields no value', () => {
    const f = sensor({ address: 0, type: 'float32' });
    const [block] = planReads([f], { maxGap: 0 });
    assert.equal(extract(f, block!, [0x7fc0, 0]).value, null);
  });
});

describe('modbus errors and delays', () => {
  it('classifies what modbus-serial rejects with, without values in the message', () => {
    assert.equal(
      classify({ name: 'TransactionTimedOutError', message: 'Timed out', errno: 'ETIMEDOUT' }, 250).message,
      'no response within 250 ms',
    );
    const ex = classify(
      Object.assign(new Error('Modbus exception 2: Illegal data address'), { modbusCode: 2 }),
      1,
    );
    assert.equal(ex.kind, 'exception');
    assert.equal(ex.exceptionCode, 2);
    assert.equal(classify(new Error('CRC error'), 1).kind, 'crc');
    assert.equal(classify(new Error('connect ECONNREFUSED 127.0.0.1:502'), 1).kind, 'disconnected');
  });

  it('doubles the pause up to the cap and starts over after a reset', () => {
    const d = new ExponentialDelay(100, 500);
    assert.deepEqual([d.next(), d.next(), d.next(), d.next(), d.next()], [100, 200, 400, 500, 500]);
    assert.equal(d.attempts, 5);
    d.reset();
    assert.equal(d.next(), 100);
  });
});
