import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EdgegwError } from '../../../src/errors.js';
import { DebouncedInput, createGpioGroups, type EdgeKind } from '../../../src/sensors/gpio/index.js';
import type { SensorGroup } from '../../../src/sensors/types.js';
import { FakeClock } from '../../helpers/fake-clock-gpio.js';
import { failingPins, fakePins, type FakePins } from '../../helpers/gpio-fake-pin.js';
import { makeContext } from '../../helpers/gpio-sensor-context.js';

const T0 = Date.UTC(2027, 0, 1);
const sysfsRoot = mkdtempSync(join(tmpdir(), 'edgegw-gpio-unit-')); // exists: the preflight passes

function gpioSensor(id: string, gpio: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    id,
    gpio: { pin: 17, edge: 'both', debounce: 0, activeLow: false, mode: 'level', ...gpio },
    ...extra,
  };
}

function setup(sensors: unknown[], initial: Record<number, 0 | 1> = {}) {
  const clock = new FakeClock(T0);
  const { ctx, obs } = makeContext(sensors, clock);
  const fp: FakePins = fakePins(initial);
  const groups = createGpioGroups(ctx, { sysfsRoot, pinPort: fp.factory });
  return { clock, obs, fp, groups, pin: (n = 17) => fp.pins.get(n)! };
}

describe('DebouncedInput', () => {
  function input(edge: EdgeKind, debounceMs: number, activeLow = false) {
    const clock = new FakeClock(T0);
    const edges: [boolean, number][] = [];
    const d = new DebouncedInput({
      clock,
      debounceMs,
      activeLow,
      edge,
      initialRaw: 0,
      onEdge: (level, ts) => edges.push([level, ts - T0]),
    });
    return { clock, d, edges };
  }

  it('accepts a change only once it has held for the debounce time, timed from its start', () => {
    const { clock, d, edges } = input('both', 50);
    clock.advance(100);
    d.raw(1); // t=100
    clock.advance(20);
    d.raw(0); // glitch of 20 ms: ignored
    clock.advance(100);
    assert.deepEqual(edges, []);
    d.raw(1); // t=220
    clock.advance(10);
    d.raw(0); // bounce
    clock.advance(5);
    d.raw(1); // t=235, then stable
    clock.advance(49);
    assert.deepEqual(edges, []);
    clock.advance(1);
    assert.deepEqual(edges, [[true, 235]]);
    assert.equal(d.level, true);
  });

  it('with no debounce every change is an edge', () => {
    const { clock, d, edges } = input('both', 0);
    d.raw(1);
    clock.advance(1);
    d.raw(0);
    d.raw(0); // repeated level: no edge
    assert.deepEqual(edges, [
      [true, 0],
      [false, 1],
    ]);
  });

  it('filters rising and falling on the logical level', () => {
    for (const [edge, activeLow, want] of [
      ['rising', false, [true]],
      ['falling', false, [false]],
      ['rising', true, [true]],
      ['none', false, []],
    ] as const) {
      const { d, edges } = input(edge, 0, activeLow);
      d.raw(1);
      d.raw(0);
      assert.deepEqual(
        edges.map((e) => e[0]),
        want,
        `${edge} activeLow=${activeLow}`,
      );
    }
  });

  it('activeLow inverts the initial level', () => {
    const { d } = input('both', 0, true);
    assert.equal(d.level, true);
  });

  it('re-reads the pin when the window closes and restarts it on an unseen change', () => {
    const clock = new FakeClock(T0);
    const edges: boolean[] = [];
    let wire: 0 | 1 = 0;
    const d = new DebouncedInput({
      clock,
      debounceMs: 30,
      activeLow: false,
      edge: 'both',
      initialRaw: 0,
      onEdge: (level) => edges.push(level),
      readRaw: () => wire,
    });
    wire = 1;
    d.raw(1);
    clock.advance(10);
    wire = 0; // went back without an interrupt reaching us
    clock.advance(20);
    assert.deepEqual(edges, []);
    clock.advance(100);
    assert.deepEqual(edges, []);
  });
});

describe('GPIO level mode', () => {
  let groups: SensorGroup[] = [];
  afterEach(async () => {
    for (const g of groups) await g.stop();
  });

  it('emits the level at start and a boolean per accepted edge, debounced', async () => {
    const s = setup([gpioSensor('door', { debounce: 50 })]);
    groups = s.groups;
    await s.groups[0]!.start();
    assert.equal(s.pin().spec.interrupts, true);
    s.clock.advance(100);
    s.pin().set(1);
    s.clock.advance(10);
    s.pin().set(0); // bounce
    s.clock.advance(1);
    s.pin().set(1);
    s.clock.advance(60);
    s.pin().set(0);
    s.clock.advance(30);
    s.pin().set(1); // 30 ms low: too short
    s.clock.advance(200);
    assert.deepEqual(
      s.obs.of('door').map((r) => [r.value, r.ts - T0, r.quality]),
      [
        [false, 0, 'good'],
        [true, 111, 'good'],
      ],
    );
  });

  it('activeLow: a low wire reads true', async () => {
    const s = setup([gpioSensor('btn', { activeLow: true, edge: 'falling' })], { 17: 0 });
    groups = s.groups;
    await s.groups[0]!.start();
    s.pin().set(1); // logical falling: reported
    s.clock.advance(5);
    s.pin().set(0); // logical rising: filtered out
    assert.deepEqual(s.obs.values('btn'), [true, false]);
  });

  it('re-reads the level every `every` on the grid', async () => {
    const s = setup([gpioSensor('sw', { edge: 'none' }, { every: 1000 })], { 17: 1 });
    groups = s.groups;
    await s.groups[0]!.start();
    assert.equal(s.pin().watched, false);
    s.clock.advance(1500);
    s.pin().level = 0; // no interrupts on edge none: only the re-read sees it
    s.clock.advance(1000);
    assert.deepEqual(
      s.obs.of('sw').map((r) => [r.value, r.ts - T0]),
      [
        [true, 0],
        [true, 1000],
        [false, 2000],
      ],
    );
  });

  it('stop() releases the pin', async () => {
    const s = setup([gpioSensor('door', { debounce: 20 })]);
    await s.groups[0]!.start();
    s.pin().set(1);
    await s.groups[0]!.stop();
    assert.equal(s.pin().closed, true);
    assert.equal(s.clock.pending, 0, 'no timers left behind');
  });
});

describe('GPIO counter mode', () => {
  let groups: SensorGroup[] = [];
  afterEach(async () => {
    for (const g of groups) await g.stop();
  });

  function pulses(s: ReturnType<typeof setup>, n: number, highMs: number, lowMs: number) {
    for (let i = 0; i < n; i++) {
      s.pin().set(1);
      s.clock.advance(highMs);
      s.pin().set(0);
      s.clock.advance(lowMs);
    }
  }

  it('counts rising edges and emits the count of each interval (default 1 s)', async () => {
    const s = setup([gpioSensor('meter', { mode: 'counter', edge: 'rising' })]);
    groups = s.groups;
    await s.groups[0]!.start();
    pulses(s, 3, 100, 100); // 600 ms
    s.clock.advance(400); // first report at 1000
    pulses(s, 2, 100, 100);
    s.clock.advance(600); // report at 2000
    s.clock.advance(1000); // nothing counted: 0 at 3000
    assert.deepEqual(
      s.obs.of('meter').map((r) => [r.value, r.ts - T0]),
      [
        [3, 1000],
        [2, 2000],
        [0, 3000],
      ],
    );
  });

  it('counts both edges with `both`, drops bounces, and honours `every`', async () => {
    const s = setup([gpioSensor('m', { mode: 'counter', edge: 'both', debounce: 5 }, { every: 500 })]);
    groups = s.groups;
    await s.groups[0]!.start();
    s.pin().set(1);
    s.clock.advance(1);
    s.pin().set(0); // 1 ms bounce: ignored
    s.clock.advance(1);
    s.pin().set(1);
    s.clock.advance(100);
    s.pin().set(0);
    s.clock.advance(398);
    assert.deepEqual(s.obs.values('m'), [2]);
  });

  it('counts the falling edges of an activeLow input as rising', async () => {
    const s = setup([gpioSensor('m', { mode: 'counter', edge: 'rising', activeLow: true })], { 17: 1 });
    groups = s.groups;
    await s.groups[0]!.start();
    s.pin().set(0); // logical rising
    s.pin().set(1);
    s.pin().set(0); // logical rising
    s.clock.advance(1000);
    assert.deepEqual(s.obs.values('m'), [2]);
  });

  it('emits the partial count at stop rather than losing pulses', async () => {
    const s = setup([gpioSensor('m', { mode: 'counter', edge: 'rising' })]);
    await s.groups[0]!.start();
    pulses(s, 4, 10, 10);
    await s.groups[0]!.stop();
    assert.deepEqual(s.obs.values('m'), [4]);
  });
});

describe('GPIO commissioning and start errors', () => {
  it('readOnce reads the level without start and releases the pin', async () => {
    const fp = fakePins({ 529: 0 });
    const { ctx } = makeContext(
      [gpioSensor('door', { activeLow: true, pin: 'GPIO17' }, { unit: 'open' })],
      new FakeClock(T0),
    );
    const [g] = createGpioGroups(ctx, { sysfsRoot, pinPort: fp.factory, resolvePin: () => 529 });
    const [row] = await g!.readOnce();
    assert.deepEqual(row, {
      id: 'door',
      where: 'GPIO17 (sysfs 529)',
      value: true,
      quality: 'good',
      ts: T0,
      unit: 'open',
    });
    assert.equal(fp.pins.get(529)!.closed, true);
    assert.equal(fp.pins.get(529)!.spec.interrupts, false);
  });

  it('readOnce reports a pin that cannot be opened as an error row', async () => {
    const clock = new FakeClock(T0);
    const { ctx } = makeContext([gpioSensor('door', {})], clock);
    const [g] = createGpioGroups(ctx, { sysfsRoot, pinPort: failingPins('EBUSY') });
    const [row] = await g!.readOnce();
    assert.equal(row!.value, null);
    assert.equal(row!.quality, 'bad');
    assert.match(row!.error!, /sensor door: sysfs GPIO 17: pin in use by another driver or process/);
  });

  async function startError(opts: Parameters<typeof createGpioGroups>[1], pin: string | number = 17) {
    const { ctx } = makeContext([gpioSensor('door-1', { pin })], new FakeClock(T0));
    const [g] = createGpioGroups(ctx, opts);
    const err = await g!.start().then(
      () => assert.fail('start() should fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof EdgegwError);
    assert.equal(err.code, 'EDGEGW_E_GPIO');
    return err.message;
  }

  it('names the cause of each errno', async () => {
    const opts = { sysfsRoot, resolvePin: () => 529 };
    const cases: [string, RegExp][] = [
      ['EACCES', /add the edgegw user to the gpio group/],
      ['EPERM', /add the edgegw user to the gpio group/],
      ['EBUSY', /pin in use by another driver or process/],
      ['EINVAL', /no such GPIO number on this board \(check gateway.profile\)/],
    ];
    for (const [code, re] of cases) {
      const msg = await startError({ ...opts, pinPort: failingPins(code) }, 'GPIO17');
      assert.match(msg, re, code);
      assert.match(msg, /^sensor door-1: GPIO17 \(sysfs 529\): /, code);
      assert.ok(msg.includes(`(${code})`), code);
    }
  });

  it('a missing sysfs GPIO folder means no GPIO board', async () => {
    const msg = await startError({ sysfsRoot: join(sysfsRoot, 'nope'), pinPort: fakePins().factory });
    assert.match(
      msg,
      /sensor door-1: sysfs GPIO 17: .*nope does not exist: not a Linux GPIO board or sysfs GPIO disabled/,
    );
  });

  it('a pin name without a board profile fails naming the sensor', async () => {
    const msg = await startError({ sysfsRoot, pinPort: fakePins().factory }, 'GPIO17');
    assert.match(msg, /^sensor door-1: .*GPIO17.*no board profile/);
  });
});
