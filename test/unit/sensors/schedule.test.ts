import assert from 'node:assert/strict';
import { FixedGrid } from '../../../src/sensors/schedule.js';
import { FakeClock } from '../../helpers/fake-clock-gpio.js';

describe('FixedGrid', () => {
  it('ticks at t0 + k*period with the scheduled time', () => {
    const clock = new FakeClock(1_000_000);
    const ticks: number[] = [];
    const grid = new FixedGrid({ clock, period: 100, tick: (ts) => void ticks.push(ts) });
    grid.start();
    clock.advance(350);
    assert.deepEqual(ticks, [1_000_000, 1_000_100, 1_000_200, 1_000_300]);
  });

  it('does not drift when callbacks run late within a period', () => {
    const clock = new FakeClock(0);
    const ticks: number[] = [];
    const fired: number[] = [];
    const grid = new FixedGrid({
      clock,
      period: 100,
      tick: (ts) => {
        ticks.push(ts);
        fired.push(clock.now());
        clock.stall(30); // each tick costs 30 ms of the period
      },
    });
    grid.start();
    clock.advance(1000);
    assert.deepEqual(ticks, [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
    // Fired on the grid, not at 0, 130, 260, … as a schedule-from-callback timer would.
    assert.deepEqual(fired, ticks);
  });

  it('uses t0 when given', () => {
    const clock = new FakeClock(0);
    const ticks: number[] = [];
    const grid = new FixedGrid({ clock, period: 50, t0: 200, tick: (ts) => void ticks.push(ts) });
    grid.start();
    clock.advance(199);
    assert.deepEqual(ticks, []);
    clock.advance(60);
    assert.deepEqual(ticks, [200, 250]);
  });

  it('skips slots missed while the event loop was blocked and reports how many', () => {
    const clock = new FakeClock(0);
    const ticks: number[] = [];
    const skips: number[] = [];
    const grid = new FixedGrid({
      clock,
      period: 100,
      tick: (ts) => void ticks.push(ts),
      onSkip: (n) => skips.push(n),
    });
    grid.start();
    clock.advance(100); // ticks 0, 100
    clock.stall(350); // blocked: slot 200 fires at 450
    clock.advance(0);
    assert.deepEqual(skips, [2]); // 200 and 300 dropped
    assert.deepEqual(ticks, [0, 100, 400]);
    clock.advance(100);
    assert.deepEqual(ticks, [0, 100, 400, 500]);
  });

  it('does not skip when a tick is late by less than a period', () => {
    const clock = new FakeClock(0);
    const ticks: number[] = [];
    const skips: number[] = [];
    const grid = new FixedGrid({
      clock,
      period: 100,
      tick: (ts) => void ticks.push(ts),
      onSkip: (n) => skips.push(n),
    });
    grid.start();
    clock.advance(0);
    clock.stall(190);
    clock.advance(0);
    assert.deepEqual(ticks, [0, 100]);
    assert.deepEqual(skips, []);
  });

  it('waits for async work and skips the slots it overran, never overlapping ticks', async () => {
    const clock = new FakeClock(0);
    const ticks: number[] = [];
    const skips: number[] = [];
    let active = 0;
    let maxActive = 0;
    let release: (() => void) | undefined;
    const grid = new FixedGrid({
      clock,
      period: 100,
      tick: async (ts) => {
        ticks.push(ts);
        active++;
        maxActive = Math.max(maxActive, active);
        if (ts === 100) await new Promise<void>((r) => (release = r));
        active--;
      },
      onSkip: (n) => skips.push(n),
    });
    grid.start();
    await clock.advanceAsync(450); // the tick at 100 hangs
    assert.deepEqual(ticks, [0, 100]);
    release!();
    await clock.advanceAsync(0);
    assert.deepEqual(ticks, [0, 100, 400]);
    assert.deepEqual(skips, [2]);
    assert.equal(maxActive, 1);
    await grid.stop();
  });

  it('keeps polling on time when the wall clock steps back an hour (stamps the stepped time)', () => {
    const clock = new FakeClock(Date.UTC(2027, 0, 1));
    const fired: number[] = [];
    const ticks: number[] = [];
    const skips: number[] = [];
    const grid = new FixedGrid({
      clock,
      period: 1000,
      tick: (ts) => {
        ticks.push(ts);
        fired.push(clock.monotonic());
      },
      onSkip: (n) => skips.push(n),
    });
    grid.start();
    clock.advance(2500); // slots 0, 1000, 2000
    const mono = clock.monotonic();
    const wall = clock.now();
    clock.set(wall - 3_600_000); // NTP steps the wall clock back 1 h
    clock.advance(3000);
    assert.equal(ticks.length, 6, 'three more polls in the next 3 s, not a frozen grid');
    assert.deepEqual(
      fired.slice(3).map((m) => m - mono),
      [500, 1500, 2500],
      'on the same grid as before the step',
    );
    assert.deepEqual(
      ticks.slice(3).map((ts) => ts - (wall - 3_600_000)),
      [500, 1500, 2500],
      'timestamps follow the stepped wall clock',
    );
    assert.deepEqual(skips, []);
  });

  it('does not report a day of skipped slots when the wall clock jumps forward a day', () => {
    const clock = new FakeClock(Date.UTC(2027, 0, 1));
    const ticks: number[] = [];
    const skips: number[] = [];
    const grid = new FixedGrid({
      clock,
      period: 100,
      tick: (ts) => void ticks.push(ts),
      onSkip: (n) => skips.push(n),
    });
    grid.start();
    clock.advance(150);
    const wall = clock.now();
    clock.set(wall + 86_400_000);
    clock.advance(200);
    assert.deepEqual(skips, [], 'monotonic time moved 200 ms: nothing was skipped');
    assert.equal(ticks.length, 4);
    assert.deepEqual(
      ticks.slice(2).map((ts) => ts - wall - 86_400_000),
      [50, 150],
    );
  });

  it('hands ticks integer wall-clock ms even though monotonic time has fractions', () => {
    const fake = new FakeClock(Date.UTC(2027, 0, 1));
    const clock = {
      now: () => fake.now(),
      monotonic: () => fake.monotonic() + 0.375, // like performance.now()
      setTimeout: (fn: () => void, ms: number) => fake.setTimeout(fn, ms),
      clearTimeout: (h: unknown) => fake.clearTimeout(h),
    };
    const ticks: number[] = [];
    const grid = new FixedGrid({ clock, period: 100, tick: (ts) => void ticks.push(ts) });
    grid.start();
    fake.advance(250);
    fake.stall(30);
    fake.advance(100);
    assert.equal(ticks.length, 4);
    assert.ok(ticks.every(Number.isInteger), `integer ms: ${ticks.join(', ')}`);
  });

  it('keeps going after a tick throws, and reports the error', () => {
    const clock = new FakeClock(0);
    const errors: unknown[] = [];
    let n = 0;
    const grid = new FixedGrid({
      clock,
      period: 10,
      tick: () => {
        n++;
        if (n === 2) throw new Error('boom');
      },
      onError: (e) => errors.push(e),
    });
    grid.start();
    clock.advance(40);
    assert.equal(n, 5);
    assert.equal(errors.length, 1);
  });

  it('stop() cancels the pending timeout', async () => {
    const clock = new FakeClock(0);
    let n = 0;
    const grid = new FixedGrid({ clock, period: 10, tick: () => void n++ });
    grid.start();
    clock.advance(25);
    await grid.stop();
    assert.equal(clock.pending, 0);
    clock.advance(100);
    assert.equal(n, 3);
    assert.equal(grid.started, false);
  });

  it('refuses a non-positive period', () => {
    assert.throws(
      () => new FixedGrid({ clock: new FakeClock(), period: 0, tick: () => undefined }),
      /positive/,
    );
  });
});
