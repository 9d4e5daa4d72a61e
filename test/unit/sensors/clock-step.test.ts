// Wall-clock steps (NTP corrections, a board booting with an old time) through the path the daemon
// wires: sim sensors -> TimestampGuard -> status model. Polls stay on the monotonic grid; only the
// timestamps see the step, and the guard keeps each sensor's timestamps from going backwards.

import assert from 'node:assert/strict';
import { createSimGroups } from '../../../src/sensors/sim.js';
import { TimestampGuard, BUILD_TIME } from '../../../src/sensors/timestamps.js';
import { StatusModel } from '../../../src/status/model.js';
import type { Reading } from '../../../src/types.js';
import { FakeClock } from '../../helpers/fake-clock-gpio.js';
import { makeContext } from '../../helpers/gpio-sensor-context.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function site(clock: FakeClock) {
  const model = new StatusModel({
    gateway: 'gw',
    version: 'test',
    clock,
    uplink: () => ({ state: 'offline', broker: 'b:1', since: 0, inflight: 0, lastError: null }),
    queue: () => ({ records: 0, readings: 0, bytes: 0, oldestTs: null, nextSeq: 1 }),
    clockIssue: () => guard.clockIssue(),
  });
  const guard = new TimestampGuard({ clock, buildTime: BUILD_TIME });
  const seen: Reading[] = [];
  const observer = guard.wrap({
    reading: (r) => {
      seen.push(r);
      model.reading(r);
    },
    error: (s, c, m) => model.error(s, c, m),
    overrun: (s, n) => model.overrun(s, n),
  });
  const sensors = [{ id: 'c', sim: { wave: 'counter', min: 0, max: 100, period: 60_000 }, every: 1000 }];
  const { ctx } = makeContext(sensors, clock, { observer });
  const [group] = createSimGroups(ctx);
  return { model, seen, group: group! };
}

describe('sensors under a wall-clock step', () => {
  it('a step back of 1 h: polls keep coming each second, timestamps hold, status stays clean', async () => {
    const clock = new FakeClock();
    const { model, seen, group } = site(clock);
    await group.start();
    clock.advance(3000); // polls at 0, 1000, 2000, 3000
    assert.equal(seen.length, 4);
    const lastTs = seen.at(-1)!.ts;
    clock.set(clock.now() - HOUR);
    clock.advance(5000);
    await group.stop();
    assert.equal(seen.length, 9, 'five more polls in five seconds');
    assert.deepEqual(
      seen.map((r) => r.value),
      [0, 1, 2, 3, 4, 5, 6, 7, 8],
    );
    // TimestampGuard: a sensor's ts never goes backwards, so after the step the readings keep the
    // last good ts (order preserved, nothing dropped); the clock is still after the build: 'good'.
    for (const r of seen.slice(4)) assert.equal(r.ts, lastTs);
    assert.ok(seen.every((r) => r.quality === 'good'));
    const s = model.snapshot();
    assert.deepEqual(s.overruns, []);
    assert.equal(s.uptimeS, 8, 'uptime is monotonic, not negative or an hour off');
  });

  it('a jump forward of a day: no flood of skipped polls, one poll per second goes on', async () => {
    const clock = new FakeClock();
    const { model, seen, group } = site(clock);
    await group.start();
    clock.advance(2000);
    const before = clock.now();
    clock.set(before + DAY);
    clock.advance(3000);
    await group.stop();
    assert.equal(seen.length, 6);
    assert.deepEqual(
      seen.slice(3).map((r) => r.ts - before - DAY),
      [1000, 2000, 3000],
      'timestamps take the new wall time',
    );
    const s = model.snapshot();
    assert.deepEqual(s.overruns, [], 'not 86,400 skipped polls');
    assert.equal(s.uptimeS, 5);
  });
});
