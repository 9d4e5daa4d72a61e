import assert from 'node:assert/strict';
import { BUILD_TIME, TimestampGuard } from '../../../src/sensors/timestamps.js';
import { FakeClock } from '../../helpers/fake-clock-gpio.js';
import { RecordingObserver, captureLog } from '../../helpers/gpio-sensor-context.js';

const GOOD = Date.UTC(2027, 2, 1);

describe('TimestampGuard', () => {
  it('BUILD_TIME is 2026-11-01T00:00:00Z', () => {
    assert.equal(new Date(BUILD_TIME).toISOString(), '2026-11-01T00:00:00.000Z');
  });

  it('passes good readings through unchanged, and errors and overruns too', () => {
    const clock = new FakeClock(GOOD);
    const inner = new RecordingObserver();
    const obs = new TimestampGuard({ clock, buildTime: BUILD_TIME }).wrap(inner);
    const r = { sensor: 'a', ts: GOOD, value: 1, quality: 'stale' as const };
    obs.reading(r);
    obs.error('a', 'EDGEGW_E_SENSOR_READ', 'timeout');
    obs.overrun('bus', 3);
    assert.equal(inner.readings[0], r);
    assert.deepEqual(inner.errors, [{ sensor: 'a', code: 'EDGEGW_E_SENSOR_READ', message: 'timeout' }]);
    assert.deepEqual(inner.overruns, [{ scope: 'bus', skipped: 3 }]);
  });

  it("keeps each sensor's timestamps from going backwards", () => {
    const clock = new FakeClock(GOOD);
    const inner = new RecordingObserver();
    const obs = new TimestampGuard({ clock, buildTime: BUILD_TIME }).wrap(inner);
    obs.reading({ sensor: 'a', ts: GOOD + 1000, value: 1, quality: 'good' });
    obs.reading({ sensor: 'b', ts: GOOD + 10, value: 1, quality: 'good' });
    obs.reading({ sensor: 'a', ts: GOOD + 400, value: 2, quality: 'good' }); // clock stepped back
    obs.reading({ sensor: 'b', ts: GOOD + 20, value: 2, quality: 'good' }); // b is unaffected by a
    obs.reading({ sensor: 'a', ts: GOOD + 1500, value: 3, quality: 'good' });
    assert.deepEqual(
      inner.of('a').map((r) => [r.ts - GOOD, r.value, r.quality]),
      [
        [1000, 1, 'good'],
        [1000, 2, 'good'],
        [1500, 3, 'good'],
      ],
    );
    assert.deepEqual(
      inner.of('b').map((r) => r.ts - GOOD),
      [10, 20],
    );
  });

  it('marks readings bad while the clock is before the build time, logging once each way', () => {
    const clock = new FakeClock(5_000); // booted in 1970
    const inner = new RecordingObserver();
    const { log, lines } = captureLog();
    const guard = new TimestampGuard({ clock, buildTime: BUILD_TIME, log });
    const obs = guard.wrap(inner);
    obs.reading({ sensor: 'a', ts: 5_000, value: 1, quality: 'good' });
    clock.set(6_000);
    obs.reading({ sensor: 'a', ts: 6_000, value: 2, quality: 'good' });
    assert.equal(guard.clockOk(), false);
    assert.match(guard.clockIssue()!, /1970-01-01T00:00:05.000Z, before this build/);
    clock.set(GOOD); // NTP step
    obs.reading({ sensor: 'a', ts: GOOD, value: 3, quality: 'good' });
    assert.equal(guard.clockOk(), true);
    assert.equal(guard.clockIssue(), null);
    assert.deepEqual(
      inner.readings.map((r) => r.quality),
      ['bad', 'bad', 'good'],
    );
    const clockLines = lines.filter((l) => l.code === 'EDGEGW_E_CLOCK');
    assert.equal(clockLines.length, 2);
    assert.equal(clockLines[0]!.level, 40);
    assert.equal(clockLines[1]!.level, 30);
    assert.ok(!JSON.stringify(lines).includes('"value"'), 'no reading values in the log');
  });

  it('marks a reading bad when its own ts is before the build time', () => {
    const clock = new FakeClock(GOOD);
    const inner = new RecordingObserver();
    const guard = new TimestampGuard({ clock, buildTime: BUILD_TIME });
    guard.wrap(inner).reading({ sensor: 'a', ts: 1000, value: true, quality: 'good' });
    assert.equal(inner.readings[0]!.quality, 'bad');
    assert.equal(guard.clockOk(), true);
  });

  it('notices a clock stepping back to before the build time', () => {
    const clock = new FakeClock(GOOD);
    const { log, lines } = captureLog();
    const guard = new TimestampGuard({ clock, buildTime: BUILD_TIME, log });
    assert.equal(guard.clockOk(), true);
    clock.set(0);
    assert.equal(guard.clockOk(), false);
    assert.equal(guard.clockOk(), false);
    assert.equal(lines.filter((l) => l.code === 'EDGEGW_E_CLOCK').length, 1);
  });
});

describe('TimestampGuard on the reading path', () => {
  it('reads the wall clock only for an implausible reading or while the clock is distrusted', () => {
    const clock = new FakeClock(GOOD);
    let reads = 0;
    const now = clock.now.bind(clock);
    clock.now = () => {
      reads++;
      return now();
    };
    const inner = new RecordingObserver();
    const obs = new TimestampGuard({ clock, buildTime: BUILD_TIME }).wrap(inner);
    for (let i = 0; i < 1000; i++) obs.reading({ sensor: 'a', ts: GOOD + i, value: i, quality: 'good' });
    assert.equal(reads, 0, 'plausible readings under a trusted clock');
    obs.reading({ sensor: 'a', ts: 1000, value: 1, quality: 'good' });
    assert.equal(reads, 1, 'a reading stamped before the build time makes it look');
    assert.equal(inner.readings.length, 1001);
    assert.ok(inner.readings.slice(0, 1000).every((r) => r.quality === 'good'));
  });
});
