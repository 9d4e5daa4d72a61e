// Modbus RTU over a real pty pair (socat) to a small RTU slave with CRC16: two units, a bad CRC
// that only spoils its own unit, and a serial adapter that vanishes and returns.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createModbusGroups } from '../../src/sensors/modbus/index.js';
import { encodeValue } from '../../src/sensors/modbus/decode.js';
import type { SensorGroup } from '../../src/sensors/types.js';
import { captureLog, modbusContext, modbusSensor, rtuBus, waitFor } from '../helpers/modbus.js';
import { runCli } from '../helpers/cli.js';
import { RtuSlave, crc16, startPtyPair, type PtyPair } from '../helpers/modbus-rtu.js';
import { makeSite } from '../helpers/site.js';

const FAST_TUNING = { unitBackoffMin: 200, unitBackoffMax: 400, reconnectMin: 100, reconnectMax: 300 };

describe('modbus over RTU (socat pty pair)', function () {
  this.timeout(20_000);
  let dir: string;
  let pty: PtyPair;
  let slave: RtuSlave;
  let group: SensorGroup | undefined;

  function load(s: RtuSlave): void {
    s.registers.holding.set(encodeValue(21.6, { type: 'float32', wordOrder: 'little', byteOrder: 'big' }), 0);
    s.registers.holding.set([1450], 2);
    s.registers.input.set([0xfed4], 5);
    s.bits.coil.set([0, 1], 0);
  }

  const sensors = [
    modbusSensor('temp', 'rs485', { address: 0, type: 'float32', wordOrder: 'little' }),
    modbusSensor('speed', 'rs485', { address: 2 }),
    modbusSensor('alarm', 'rs485', { table: 'coil', address: 1 }),
    modbusSensor('u2-level', 'rs485', { unitId: 2, table: 'input', address: 5, type: 'int16', scale: 0.1 }),
  ];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgegw-rtu-'));
    pty = await startPtyPair(dir);
    slave = new RtuSlave(pty.slavePath, [1, 2]);
    await slave.open();
    load(slave);
  });

  afterEach(async () => {
    await group?.stop();
    group = undefined;
    await slave.close();
    await pty.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('edgegw sensors read over RTU from the bundled CLI (serialport loaded on first use)', async () => {
    // The bundle stands in for serialport until a serial port is opened (scripts/lazy-serialport.cjs).
    const site = await makeSite({
      buses: `  rs485:
    rtu: { port: ${pty.driverPath}, baudRate: 115200, parity: none, dataBits: 8, stopBits: 1 }
    timeout: 200ms
    retries: 1`,
      sensors: `  - { id: speed, bus: rs485, table: holding, address: 2, type: uint16, every: 1s }
  - { id: u2-level, bus: rs485, unitId: 2, table: input, address: 5, type: int16, scale: 0.1, every: 1s }`,
    });
    try {
      const r = await runCli(['sensors', 'read', '--json', '-c', site.configFile], { EDGEGW_UNBUNDLED: '' });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const rows = JSON.parse(r.stdout) as { id: string; value: unknown; quality: string }[];
      assert.deepEqual(
        rows.map((x) => [x.id, x.value, x.quality]),
        [
          ['speed', 1450, 'good'],
          ['u2-level', -30, 'good'],
        ],
      );
    } finally {
      await site.cleanup();
    }
  });

  it('computes the Modbus CRC16 of a known frame', () => {
    // 01 03 00 00 00 0A → CRC C5 CD (sent low byte first)
    assert.equal(crc16(Buffer.from([0x01, 0x03, 0x00, 0x00, 0x00, 0x0a])), 0xcdc5);
  });

  it('reads two units, coalesced, once and on schedule', async () => {
    const { ctx, obs } = modbusContext({ rs485: rtuBus(pty.driverPath) }, sensors);
    [group] = createModbusGroups(ctx);
    const rows = await group!.readOnce();
    assert.deepEqual(
      rows.map((r) => [r.id, r.value, r.quality]),
      [
        ['temp', 21.6, 'good'],
        ['speed', 1450, 'good'],
        ['alarm', true, 'good'],
        ['u2-level', -30, 'good'],
      ],
    );
    assert.deepEqual(rows[0]!.raw, [0xcccd, 0x41ac]);
    assert.equal(rows[3]!.where, 'rs485 unit 2 input 5');
    // holding 0..2, coil 1, unit 2 input 5
    assert.equal(slave.requests, 3);

    await group!.start();
    await waitFor('5 polls', () => sensors.every((s) => obs.of(s.id).length >= 5));
    assert.ok(obs.readings.every((r) => r.quality === 'good'));
  });

  it('a bad CRC from unit 2 spoils only unit 2, which recovers when the line is clean', async () => {
    const { ctx, obs } = modbusContext({ rs485: rtuBus(pty.driverPath) }, sensors);
    [group] = createModbusGroups(ctx, { tuning: FAST_TUNING });
    await group!.start();
    await waitFor('first polls', () => obs.of('u2-level').length >= 2);
    const faultAt = Date.now();
    slave.setMode('badCrc', 2);
    await waitFor('unit 2 bad', () => obs.of('u2-level').some((r) => r.ts > faultAt && r.quality === 'bad'));
    const u1 = () => obs.of('speed').filter((r) => r.ts > faultAt);
    await waitFor('unit 1 keeps polling', () => u1().length >= 4, 10_000);
    assert.ok(
      u1().every((r) => r.quality === 'good'),
      `unit 1: ${u1().length} readings`,
    );
    assert.ok(obs.errors.some((e) => e.sensor === 'u2-level' && /CRC error/.test(e.message)));
    assert.ok(!obs.errors.some((e) => e.sensor !== 'u2-level'));
    slave.setMode('ok', 2);
    const okAt = Date.now();
    await waitFor('unit 2 good', () => obs.of('u2-level').some((r) => r.ts > okAt && r.quality === 'good'));
  });

  it('a serial adapter that vanishes and returns is reopened by itself', async () => {
    const logs = captureLog();
    const { ctx, obs } = modbusContext({ rs485: rtuBus(pty.driverPath) }, sensors, { log: logs.log });
    [group] = createModbusGroups(ctx, { tuning: FAST_TUNING });
    await group!.start();
    await waitFor('first polls', () => obs.of('speed').length >= 2);

    await slave.close();
    await pty.stop();
    const goneAt = Date.now();
    await waitFor('bad while unplugged', () =>
      sensors.every((s) => obs.of(s.id).some((r) => r.ts > goneAt && r.quality === 'bad')),
    );
    await waitFor('serial error logged', () => logs.lines.some((l) => l.code === 'EDGEGW_E_SERIAL'));
    // A few more polls while unplugged (counted, not timed): every one of them is bad.
    const seen = obs.of('speed').length;
    await waitFor('more polls while unplugged', () => obs.of('speed').length >= seen + 3, 10_000);
    assert.ok(
      obs
        .of('speed')
        .filter((r) => r.ts > goneAt + 50)
        .every((r) => r.quality === 'bad'),
    );

    pty = await startPtyPair(dir);
    slave = new RtuSlave(pty.slavePath, [1, 2]);
    await slave.open();
    load(slave);
    const backAt = Date.now();
    await waitFor(
      'good again',
      () => sensors.every((s) => obs.of(s.id).some((r) => r.ts > backAt && r.quality === 'good')),
      8000,
    );
  });
});
