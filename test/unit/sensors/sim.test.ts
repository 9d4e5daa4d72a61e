import assert from 'node:assert/strict';
import { createSimGroups } from '../../../src/sensors/sim.js';
import { FakeClock } from '../../helpers/fake-clock-gpio.js';
import { makeContext } from '../../helpers/gpio-sensor-context.js';

const sim = (id: string, sim: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  id,
  sim: { min: 0, max: 100, period: 60_000, ...sim },
  every: 1000,
  ...extra,
});

describe('sim sensors', () => {
  it('makes one group per sim sensor and ignores other drivers', () => {
    const { ctx } = makeContext(
      [
        sim('a', { wave: 'sine' }),
        { id: 'door', gpio: { pin: 17, edge: 'both', debounce: 0, activeLow: false, mode: 'level' } },
        sim('b', { wave: 'counter' }),
      ],
      new FakeClock(),
    );
    const groups = createSimGroups(ctx);
    assert.deepEqual(
      groups.map((g) => g.sensorIds),
      [['a'], ['b']],
    );
  });

  it('sine spans min..max over its period, on the poll grid, with decimals', async () => {
    const t0 = Date.UTC(2027, 0, 1); // a multiple of the 4 s period
    const clock = new FakeClock(t0);
    const { ctx, obs } = makeContext(
      [sim('wave', { wave: 'sine', min: 10, max: 30, period: 4000 }, { every: 1000, decimals: 2 })],
      clock,
    );
    const [g] = createSimGroups(ctx);
    await g!.start();
    clock.advance(4000);
    await g!.stop();
    assert.deepEqual(
      obs.of('wave').map((r) => r.ts - t0),
      [0, 1000, 2000, 3000, 4000],
    );
    // phase 0 → mid, 1/4 → max, 1/2 → mid, 3/4 → min.
    assert.deepEqual(obs.values('wave'), [20, 30, 20, 10, 20]);
    assert.ok(obs.readings.every((r) => r.quality === 'good'));
  });

  it('rounds to decimals', async () => {
    const t0 = Date.UTC(2027, 0, 1) + 500; // phase 1/12 of a 6 s period: sin = 0.5
    const clock = new FakeClock(t0);
    const { ctx } = makeContext(
      [sim('w', { wave: 'sine', min: 0, max: 10, period: 6000 }, { decimals: 1 })],
      clock,
    );
    const [row] = await createSimGroups(ctx)[0]!.readOnce();
    assert.equal(row!.value, 7.5); // 7.499999999999999 before rounding
    assert.equal(row!.where, 'sim sine');
  });

  it('counter yields 0, 1, 2, … one per poll', async () => {
    const clock = new FakeClock(0);
    const { ctx, obs } = makeContext([sim('c', { wave: 'counter' }, { every: 100 })], clock);
    const [g] = createSimGroups(ctx);
    await g!.start();
    clock.advance(450);
    await g!.stop();
    clock.advance(1000);
    assert.deepEqual(obs.values('c'), [0, 1, 2, 3, 4]);
  });

  it('random stays within min..max', async () => {
    const clock = new FakeClock(0);
    const { ctx, obs } = makeContext([sim('r', { wave: 'random', min: -5, max: 5 }, { every: 10 })], clock);
    const [g] = createSimGroups(ctx);
    await g!.start();
    clock.advance(2000);
    await g!.stop();
    const vs = obs.values('r') as number[];
    assert.equal(vs.length, 201);
    assert.ok(vs.every((v) => v >= -5 && v < 5));
    assert.ok(new Set(vs).size > 100, 'values vary');
  });

  it('random uses the injected source and decimals', async () => {
    const { ctx } = makeContext(
      [sim('r', { wave: 'random', min: 0, max: 10 }, { decimals: 0, unit: 'V' })],
      new FakeClock(),
    );
    const [row] = await createSimGroups(ctx, { random: () => 0.26 })[0]!.readOnce();
    assert.equal(row!.value, 3);
    assert.equal(row!.unit, 'V');
  });

  it('reports skipped polls as an overrun of the sensor', async () => {
    const clock = new FakeClock(0);
    const { ctx, obs } = makeContext([sim('c', { wave: 'counter' }, { every: 100 })], clock);
    const [g] = createSimGroups(ctx);
    await g!.start();
    clock.advance(0);
    clock.stall(550);
    clock.advance(0);
    await g!.stop();
    assert.deepEqual(obs.overruns, [{ scope: 'c', skipped: 4 }]);
    assert.deepEqual(
      obs.of('c').map((r) => r.ts),
      [0, 500],
    );
  });

  it('a value that overflows (span of ±1.8e308) is a bad reading of 0, counted as an error', async () => {
    const clock = new FakeClock(Date.UTC(2027, 0, 1));
    const { ctx, obs } = makeContext(
      [
        sim('huge', { wave: 'sine', min: -1.7e308, max: 1.7e308 }, { every: 1000 }),
        sim('wild', { wave: 'random', min: -1.7e308, max: 1.7e308 }, { every: 1000 }),
        sim('fine', { wave: 'counter' }, { every: 1000 }),
      ],
      clock,
    );
    const groups = createSimGroups(ctx, { random: () => 0.25 });
    for (const g of groups) await g.start();
    clock.advance(2000);
    for (const g of groups) await g.stop();
    for (const id of ['huge', 'wild']) {
      assert.equal(obs.of(id).length, 3, id);
      assert.ok(
        obs.of(id).every((r) => r.value === 0 && r.quality === 'bad'),
        JSON.stringify(obs.of(id)),
      );
      assert.equal(obs.errors.filter((e) => e.sensor === id && e.code === 'EDGEGW_E_SENSOR_READ').length, 3);
    }
    assert.deepEqual(obs.values('fine'), [0, 1, 2]);
    assert.ok(obs.of('fine').every((r) => r.quality === 'good'));
    // Commissioning shows the same: no NaN in `sensors read` either.
    const rows = await groups[0]!.readOnce();
    assert.equal(rows[0]!.quality, 'bad');
    assert.equal(rows[0]!.value, 0);
  });
});
