// Faults stay local: a unit that stops answering, answers exception 2, or a device whose
// connection drops makes only its own sensors go bad; the others keep their schedule and stay
// good; everything recovers by itself once the fault clears. Also: overruns are reported, not
// piled up. Real ServerTCP, real time, waits with deadlines.

import assert from 'node:assert/strict';
import { startModbusSimulator, type ModbusSim } from '../../src/demo/modbus-sim.js';
import { createModbusGroups } from '../../src/sensors/modbus/index.js';
import type { SensorGroup } from '../../src/sensors/types.js';
import type { Reading } from '../../src/types.js';
import {
  captureLog,
  modbusContext,
  modbusSensor,
  tcpBus,
  waitFor,
  type RecordingObserver,
} from '../helpers/modbus.js';

const FAST_TUNING = { unitBackoffMin: 200, unitBackoffMax: 400, reconnectMin: 100, reconnectMax: 300 };

const after = (obs: RecordingObserver, id: string, ts: number): Reading[] =>
  obs.of(id).filter((r) => r.ts > ts);

describe('modbus faults stay local (real ServerTCP)', function () {
  this.timeout(20_000);
  const sims: ModbusSim[] = [];
  const groups: SensorGroup[] = [];

  async function sim(): Promise<ModbusSim> {
    const s = await startModbusSimulator({ port: 0, demo: false });
    sims.push(s);
    return s;
  }

  afterEach(async () => {
    await Promise.all(groups.splice(0).map((g) => g.stop()));
    await Promise.all(sims.splice(0).map((s) => s.close()));
  });

  for (const mode of ['silent', 'exception2'] as const) {
    it(`unit 2 ${mode === 'silent' ? 'stops answering' : 'answers exception 2'}: only its sensors go bad, unit 1 keeps its schedule`, async () => {
      const plc = await sim();
      plc.set('holding', 0, [11, 22]);
      const sensors = [
        modbusSensor('u1-a', 'plc', { address: 0, unitId: 1 }),
        modbusSensor('u2-a', 'plc', { address: 1, unitId: 2 }),
        modbusSensor('u2-b', 'plc', { address: 0, unitId: 2, table: 'coil' }),
      ];
      const logs = captureLog();
      const { ctx, obs } = modbusContext({ plc: tcpBus(plc.port, { timeout: 150, retries: 1 }) }, sensors, {
        log: logs.log,
      });
      const [group] = createModbusGroups(ctx, { tuning: FAST_TUNING });
      groups.push(group!);
      await group!.start();
      await waitFor('both units read', () => obs.of('u1-a').length >= 3 && obs.of('u2-a').length >= 3);

      const faultAt = Date.now();
      plc.setMode(mode, 2);
      await waitFor('unit 2 bad', () => after(obs, 'u2-a', faultAt + 200).some((r) => r.quality === 'bad'));
      const u1Before = after(obs, 'u1-a', faultAt).length;
      const skippedBefore = obs.overruns.reduce((a, o) => a + o.skipped, 0);
      const u1During = () => after(obs, 'u1-a', faultAt).length - u1Before;
      const skippedDuring = () => obs.overruns.reduce((a, o) => a + o.skipped, 0) - skippedBefore;
      // Count slots, not wall time (a loaded machine runs fewer in a given time): of the first 15
      // slots of the fault, a dead unit backs off, so unit 1 keeps most of them; a unit 2 that held
      // the line with timeouts would make the bus skip them instead.
      await waitFor('15 slots into the fault', () => u1During() + skippedDuring() >= 15, 15_000);
      assert.ok(
        u1During() >= 8,
        `unit 1 got ${u1During()} readings, ${skippedDuring()} slots skipped, while unit 2 was faulty`,
      );
      assert.ok(after(obs, 'u1-a', faultAt).every((r) => r.quality === 'good' && r.value === 11));

      // Once a fault is seen, unit 2 never reports a good (old) value until the fault clears.
      const clearedAt = Date.now();
      const firstBad = after(obs, 'u2-a', faultAt).findIndex((r) => r.quality === 'bad');
      const duringFault = after(obs, 'u2-a', faultAt)
        .slice(firstBad)
        .filter((r) => r.ts < clearedAt);
      assert.ok(duringFault.length > 0);
      assert.ok(duringFault.every((r) => r.quality === 'bad' && r.value === 0));
      assert.ok(
        obs
          .of('u2-b')
          .filter((r) => r.quality === 'bad')
          .every((r) => r.value === false),
      );

      const errs = obs.errors.filter((e) => e.sensor.startsWith('u2-'));
      assert.ok(errs.length > 0);
      assert.ok(obs.errors.some((e) => e.sensor === 'u2-a'));
      assert.equal(errs[0]!.code, 'EDGEGW_E_SENSOR_READ');
      assert.match(
        errs.map((e) => e.message).join('\n'),
        mode === 'silent' ? /no response within 150 ms/ : /Modbus exception 2 \(illegal data address\)/,
      );
      assert.ok(!errs.some((e) => /\b22\b/.test(e.message)), 'no value in error messages');
      assert.equal(obs.errors.filter((e) => e.sensor === 'u1-a').length, 0);
      const warn = logs.lines.find((l) => l.code === 'EDGEGW_E_SENSOR_READ');
      assert.ok(warn !== undefined, 'a warning with the error code was logged');
      assert.ok(!JSON.stringify(logs.lines).includes('"value"'), 'no values in logs');

      plc.setMode('ok');
      await waitFor(
        'unit 2 good again',
        () => after(obs, 'u2-a', Date.now() - 100).some((r) => r.quality === 'good'),
        5000,
      );
      const last = obs.of('u2-a').at(-1)!;
      assert.equal(last.value, 22);
    });
  }

  it('a device that drops its connection: its bus goes bad, another bus stays good, then it reconnects', async () => {
    const a = await sim();
    const b = await sim();
    a.set('holding', 0, [5]);
    b.set('holding', 0, [7]);
    const sensors = [modbusSensor('a', 'dev-a', { address: 0 }), modbusSensor('b', 'dev-b', { address: 0 })];
    const { ctx, obs } = modbusContext({ 'dev-a': tcpBus(a.port), 'dev-b': tcpBus(b.port) }, sensors);
    const started = createModbusGroups(ctx, { tuning: FAST_TUNING });
    groups.push(...started);
    await Promise.all(started.map((g) => g.start()));
    await waitFor('both read', () => obs.of('a').length >= 3 && obs.of('b').length >= 3);

    const faultAt = Date.now();
    a.setMode('close');
    await waitFor('a bad', () => after(obs, 'a', faultAt).some((r) => r.quality === 'bad'));
    await waitFor('b keeps polling', () => after(obs, 'b', faultAt).length >= 5, 10_000);
    assert.ok(after(obs, 'b', faultAt).every((r) => r.quality === 'good'));
    assert.match(
      obs.errors.find((e) => e.sensor === 'a')?.message ?? '',
      /dev-a unit 1 holding 0: .*(closed|connect)/,
    );

    a.setMode('ok');
    const okAt = Date.now();
    await waitFor(
      'a reconnected and good',
      () => after(obs, 'a', okAt).some((r) => r.quality === 'good'),
      5000,
    );
    assert.equal(obs.of('a').at(-1)!.value, 5);
  });

  it('a server that goes away and comes back on the same port is reconnected', async () => {
    const a = await sim();
    a.set('holding', 3, [42]);
    const port = a.port;
    const { ctx, obs } = modbusContext({ plc: tcpBus(port) }, [modbusSensor('x', 'plc', { address: 3 })]);
    const [group] = createModbusGroups(ctx, { tuning: FAST_TUNING });
    groups.push(group!);
    await group!.start();
    await waitFor('read', () => obs.of('x').some((r) => r.quality === 'good'));
    await sims.splice(0, 1)[0]!.close();
    const goneAt = Date.now();
    await waitFor('bad', () => after(obs, 'x', goneAt).some((r) => r.quality === 'bad'));
    const back = await startModbusSimulator({ port, demo: false });
    sims.push(back);
    back.set('holding', 3, [43]);
    const backAt = Date.now();
    await waitFor('good again', () =>
      after(obs, 'x', backAt).some((r) => r.quality === 'good' && r.value === 43),
    );
  });

  it('a bus too slow for its schedule skips polls and reports the overrun', async () => {
    const plc = await sim();
    // Four separate blocks with 60 ms of silence between frames cannot fit in 100 ms.
    const sensors = [0, 20, 40, 60].map((address) => modbusSensor(`s${address}`, 'slow-bus', { address }));
    const { ctx, obs } = modbusContext(
      { 'slow-bus': tcpBus(plc.port, { interFrameDelay: 60, maxGap: 0 }) },
      sensors,
    );
    const [group] = createModbusGroups(ctx);
    groups.push(group!);
    const before = plc.requests;
    const startedAt = Date.now();
    await group!.start();
    await waitFor('an overrun', () => obs.overruns.length >= 2);
    await group!.stop();
    const elapsed = Date.now() - startedAt;
    assert.ok(obs.overruns.every((o) => o.scope === 'slow-bus' && o.skipped >= 1));
    // Not piled up: requests on the wire stay within what the bus can carry (one per 60 ms).
    const requests = plc.requests - before;
    assert.ok(requests <= elapsed / 60 + 4, `${requests} requests in ${elapsed} ms`);
    assert.ok(obs.readings.every((r) => r.quality === 'good'));
  });

  it('a coalesced read refused as an illegal address falls back to single reads', async () => {
    // A device with a hole in its map at address 1: reading 0..2 in one request is refused.
    const plc = await sim();
    plc.set('holding', 0, [1, 0, 3]);
    plc.unmap('holding', 1, 1);
    const sensors = [modbusSensor('r0', 'plc', { address: 0 }), modbusSensor('r2', 'plc', { address: 2 })];
    const { ctx, obs } = modbusContext({ plc: tcpBus(plc.port, { maxGap: 8 }) }, sensors);
    const [group] = createModbusGroups(ctx);
    groups.push(group!);
    await group!.start();
    await waitFor('5 polls', () => obs.of('r0').length >= 5 && obs.of('r2').length >= 5);
    await group!.stop();
    assert.ok(
      obs.readings.every((r) => r.quality === 'good'),
      'the split reads answer from the first poll on',
    );
    assert.deepEqual([...new Set(obs.values('r0'))], [1]);
    assert.deepEqual([...new Set(obs.values('r2'))], [3]);
    // First poll: the refused block + two singles; then two requests per poll.
    const polls = obs.of('r0').length;
    assert.ok(plc.requests <= 1 + 2 * polls, `${plc.requests} requests for ${polls} polls`);
  });

  it('a device refusing every address is not split for good: coalescing returns after the fault', async () => {
    const plc = await sim();
    plc.set('holding', 0, [1, 2]);
    const sensors = [modbusSensor('ok1', 'plc', { address: 0 }), modbusSensor('ok2', 'plc', { address: 1 })];
    const { ctx, obs } = modbusContext({ plc: tcpBus(plc.port) }, sensors);
    const [group] = createModbusGroups(ctx);
    groups.push(group!);
    plc.setMode('exception2');
    await group!.start();
    await waitFor('bad readings', () => obs.of('ok1').length >= 2);
    assert.ok(obs.readings.every((r) => r.quality === 'bad'));
    plc.setMode('ok');
    const okAt = Date.now();
    await waitFor('good', () => after(obs, 'ok2', okAt).filter((r) => r.quality === 'good').length >= 3);
    const before = plc.requests;
    const polls = after(obs, 'ok2', okAt).length;
    await waitFor('3 more polls', () => after(obs, 'ok2', okAt).length >= polls + 3);
    await group!.stop();
    const more = after(obs, 'ok2', okAt).length - polls;
    assert.ok(plc.requests - before <= more + 1, `${plc.requests - before} requests for ${more} polls`);
  });
});
