// The Modbus driver against a real Modbus TCP server (modbus-serial's ServerTCP in the simulator):
// every type and ordering, scale/offset/decimals, coalescing counted on the server, commissioning.

import assert from 'node:assert/strict';
import { startModbusSimulator, type ModbusSim } from '../../src/demo/modbus-sim.js';
import { createModbusGroups } from '../../src/sensors/modbus/index.js';
import type { DataTypeName, ModbusSensorConfig } from '../../src/config/schema.js';
import { encodeValue, type Order } from '../../src/sensors/modbus/decode.js';
import { modbusContext, modbusSensor, tcpBus, waitFor } from '../helpers/modbus.js';

const ORDERS: [string, Order, Order][] = [
  ['ABCD', 'big', 'big'],
  ['CDAB', 'little', 'big'],
  ['BADC', 'big', 'little'],
  ['DCBA', 'little', 'little'],
];

/** Words computed by hand from the IEEE 754 / two's complement bytes, per ordering (ABCD, CDAB, BADC, DCBA). */
const HAND: { type: DataTypeName; value: number; words: number[][] }[] = [
  {
    type: 'float32',
    value: 21.6,
    words: [
      [0x41ac, 0xcccd],
      [0xcccd, 0x41ac],
      [0xac41, 0xcdcc],
      [0xcdcc, 0xac41],
    ],
  },
  {
    type: 'uint32',
    value: 0x12345678,
    words: [
      [0x1234, 0x5678],
      [0x5678, 0x1234],
      [0x3412, 0x7856],
      [0x7856, 0x3412],
    ],
  },
  {
    type: 'int32',
    value: -2,
    words: [
      [0xffff, 0xfffe],
      [0xfffe, 0xffff],
      [0xffff, 0xfeff],
      [0xfeff, 0xffff],
    ],
  },
  {
    type: 'float64',
    value: -1234.5,
    words: [
      [0xc093, 0x4a00, 0, 0],
      [0, 0, 0x4a00, 0xc093],
      [0x93c0, 0x004a, 0, 0],
      [0, 0, 0x004a, 0x93c0],
    ],
  },
  {
    type: 'uint64',
    value: 281483566841860, // 0x0001_0002_0003_0004
    words: [
      [1, 2, 3, 4],
      [4, 3, 2, 1],
      [0x100, 0x200, 0x300, 0x400],
      [0x400, 0x300, 0x200, 0x100],
    ],
  },
  {
    type: 'int64',
    value: -281483566841860, // 0xFFFE_FFFD_FFFC_FFFC
    words: [
      [0xfffe, 0xfffd, 0xfffc, 0xfffc],
      [0xfffc, 0xfffc, 0xfffd, 0xfffe],
      [0xfeff, 0xfdff, 0xfcff, 0xfcff],
      [0xfcff, 0xfcff, 0xfdff, 0xfeff],
    ],
  },
  { type: 'int16', value: -300, words: [[0xfed4], [0xfed4], [0xd4fe], [0xd4fe]] },
  { type: 'uint16', value: 0xbeef, words: [[0xbeef], [0xbeef], [0xefbe], [0xefbe]] },
];

describe('modbus over TCP (real ServerTCP)', function () {
  this.timeout(20_000);
  let sim: ModbusSim;

  beforeEach(async () => {
    sim = await startModbusSimulator({ port: 0, demo: false });
  });
  afterEach(async () => {
    await sim.close();
  });

  it('reads every type in every ordering, from the words computed by hand', async () => {
    const sensors: ModbusSensorConfig[] = [];
    const expected = new Map<string, number>();
    let address = 100;
    for (const c of HAND) {
      ORDERS.forEach(([name, wordOrder, byteOrder], i) => {
        const words = c.words[i]!;
        // The simulator is loaded through encodeValue and must hold exactly the hand-computed words.
        sim.set('holding', address, encodeValue(c.value, { type: c.type, wordOrder, byteOrder }));
        assert.deepEqual(sim.get('holding', address, words.length), words, `${c.type} ${name}`);
        const id = `${c.type}-${name}`;
        sensors.push(modbusSensor(id, 'plc', { address, type: c.type, wordOrder, byteOrder }));
        expected.set(id, c.value);
        address += words.length + 1;
      });
    }
    sim.set('input', 7, [0x41ac, 0xcccd]);
    sim.set('coil', 3, [true]);
    sim.set('discrete', 9, [false, true]);
    sensors.push(
      modbusSensor('in-f32', 'plc', { table: 'input', address: 7, type: 'float32' }),
      modbusSensor('coil-3', 'plc', { table: 'coil', address: 3 }),
      modbusSensor('disc-10', 'plc', { table: 'discrete', address: 10 }),
      modbusSensor('disc-9', 'plc', { table: 'discrete', address: 9, type: 'bool' }),
    );
    expected.set('in-f32', 21.6);

    const { ctx } = modbusContext({ plc: tcpBus(sim.port) }, sensors);
    const [group] = createModbusGroups(ctx);
    const rows = await group!.readOnce();
    assert.equal(rows.length, sensors.length);
    for (const row of rows) {
      assert.equal(row.error, undefined, `${row.id}: ${row.error}`);
      assert.equal(row.quality, 'good');
      if (expected.has(row.id)) assert.equal(row.value, expected.get(row.id), row.id);
    }
    const byId = new Map(rows.map((r) => [r.id, r]));
    assert.equal(byId.get('coil-3')!.value, true);
    assert.equal(byId.get('disc-10')!.value, true);
    assert.equal(byId.get('disc-9')!.value, false);
    assert.deepEqual(byId.get('float32-CDAB')!.raw, [0xcccd, 0x41ac]);
    assert.equal(byId.get('float32-ABCD')!.where, 'plc unit 1 holding 100..101');
    assert.equal(byId.get('coil-3')!.where, 'plc unit 1 coil 3');
    assert.deepEqual(byId.get('coil-3')!.raw, [1]);
  });

  it('applies scale, offset and decimals at sensor precision', async () => {
    sim.set('holding', 10, [1234]);
    sim.set('holding', 11, encodeValue(21.6, { type: 'float32', wordOrder: 'big', byteOrder: 'big' }));
    sim.set('holding', 13, encodeValue(3, { type: 'int16', wordOrder: 'big', byteOrder: 'big' }));
    const sensors = [
      modbusSensor('scaled', 'plc', { address: 10, scale: 0.1, offset: -10 }),
      modbusSensor('f-dec', 'plc', { address: 11, type: 'float32', scale: 1.8, offset: 32, decimals: 1 }),
      modbusSensor('tenth', 'plc', { address: 13, type: 'int16', scale: 0.1 }),
    ];
    const { ctx } = modbusContext({ plc: tcpBus(sim.port) }, sensors);
    const rows = await createModbusGroups(ctx)[0]!.readOnce();
    assert.deepEqual(
      rows.map((r) => [r.id, r.value]),
      [
        ['scaled', 113.4],
        ['f-dec', 70.9],
        ['tenth', 0.3],
      ],
    );
  });

  it('coalesces neighbouring sensors into one request (counted by the server)', async () => {
    const sensors = [
      modbusSensor('t', 'plc', { address: 0, type: 'float32' }),
      modbusSensor('s', 'plc', { address: 2 }),
      modbusSensor('e', 'plc', { address: 4, type: 'uint32' }),
      modbusSensor('far', 'plc', { address: 40 }),
      modbusSensor('c0', 'plc', { table: 'coil', address: 0 }),
      modbusSensor('c5', 'plc', { table: 'coil', address: 5 }),
    ];
    const { ctx, obs } = modbusContext({ plc: tcpBus(sim.port, { maxGap: 8 }) }, sensors);
    const [group] = createModbusGroups(ctx);
    const before = sim.requests;
    await group!.readOnce();
    // holding 0..5, holding 40, coils 0..5: three requests for six sensors.
    assert.equal(sim.requests - before, 3);

    await group!.start();
    try {
      await waitFor('10 polls of every sensor', () => sensors.every((s) => obs.of(s.id).length >= 10));
    } finally {
      await group!.stop();
    }
    const polls = Math.min(...sensors.map((s) => obs.of(s.id).length));
    const requests = sim.requests - before - 3;
    assert.ok(requests <= 3 * (polls + 1), `${requests} requests for ${polls} polls of 3 blocks`);
    assert.ok(
      obs.readings.every((r) => r.quality === 'good'),
      'all good',
    );
  });

  it('keeps each sensor on its own `every` grid', async () => {
    const sensors = [
      modbusSensor('fast', 'plc', { address: 0, every: 100 }),
      modbusSensor('slow', 'plc', { address: 1, every: 400 }),
    ];
    const { ctx, obs } = modbusContext({ plc: tcpBus(sim.port) }, sensors);
    const [group] = createModbusGroups(ctx);
    await group!.start();
    try {
      await waitFor('12 fast polls', () => obs.of('fast').length >= 12);
    } finally {
      await group!.stop();
    }
    const fast = obs.of('fast').length;
    const slow = obs.of('slow').length;
    assert.ok(slow >= 2 && slow * 2 < fast, `slow ${slow} vs fast ${fast}`);
  });

  it('commissioning shows the error, no value, when the device is gone', async () => {
    const port = sim.port;
    await sim.close();
    const { ctx } = modbusContext({ plc: tcpBus(port) }, [modbusSensor('x', 'plc', { address: 0 })]);
    const rows = await createModbusGroups(ctx)[0]!.readOnce();
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.quality, 'bad');
    assert.equal(rows[0]!.value, null);
    assert.match(rows[0]!.error ?? '', /ECONNREFUSED|not connected/);
    sim = await startModbusSimulator({ port: 0, demo: false }); // for afterEach
  });
});
