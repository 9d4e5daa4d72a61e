// The clock sync with an injected source and fake time: stamps on since-boot time until the sync
// (a step before it does not distort them), the offset measured at a source's sync or at a jump,
// early readings still waiting corrected at their commit, the hold released, and a clock good from
// the start left alone.

import assert from 'node:assert/strict';
import { ClockSync, type ClockSyncEvent } from '../../../src/sensors/clock-sync.js';
import { TimestampGuard } from '../../../src/sensors/timestamps.js';
import type { SyncSource } from '../../../src/sensors/sync-source.js';
import type { Reading } from '../../../src/types.js';
import { FakeClock, settle } from '../../helpers/fake-clock.js';

const TRUE_NOW = 1_764_380_000_000;
const HOUR = 3_600_000;

interface Rig {
  clock: FakeClock;
  sync: ClockSync;
  events: ClockSyncEvent[];
  holds: boolean[];
  shifts: number[];
  source: SyncSource & { ok: boolean };
}

function rig(opts: { synced?: boolean; holdMs?: number } = {}): Rig {
  const clock = new FakeClock(TRUE_NOW);
  // The board's clock reads 3 h behind (the time it last shut down) until NTP steps it.
  if (opts.synced !== true) clock.set(TRUE_NOW - 3 * HOUR);
  const bootAt = clock.monotonic() - 20_000; // booted 20 s before the daemon started
  const source = { name: 'test', ok: opts.synced === true, synced: () => Promise.resolve(source.ok) };
  const events: ClockSyncEvent[] = [];
  const holds: boolean[] = [];
  const shifts: number[] = [];
  const sync = new ClockSync({
    clock,
    source,
    bootId: 'boot-a',
    sinceBoot: () => clock.monotonic() - bootAt,
    pollMs: 1000,
    jumpMs: 10_000,
    holdMs: opts.holdMs ?? 60_000,
    onSync: (e) => {
      events.push(e);
      return Promise.resolve();
    },
    onHold: (h) => holds.push(h),
    onShift: (ms) => shifts.push(ms),
  });
  return { clock, sync, events, holds, shifts, source };
}

const reading = (ts: number): Reading => ({ sensor: 's', ts, value: 1, quality: 'good' });

describe('ClockSync (injected source, fake time)', () => {
  it('stamps on since-boot time until the source syncs, then corrects early readings by the offset', async () => {
    const r = rig();
    await r.sync.start();
    assert.equal(r.sync.stamping, true);
    assert.deepEqual(r.holds, [true], 'this boot’s records are held for the sync');
    const t1 = r.sync.stampClock.now();
    assert.equal(t1, TRUE_NOW - 3 * HOUR, 'the base is the wall clock at start');
    // Readings reach the batcher through wrap(): the early ones are marked.
    const got: Reading[] = [];
    const observer = r.sync.wrap({
      reading: (x) => got.push(x),
      error: () => undefined,
      overrun: () => undefined,
    });
    observer.reading(reading(t1));
    r.clock.advance(500);
    observer.reading(reading(r.sync.stampClock.now()));
    const committedEarly = r.sync.commit(got.slice(0, 1));
    assert.deepEqual(committedEarly.stamp, { boot: 'boot-a', base: TRUE_NOW - 3 * HOUR - 20_000 });

    r.source.ok = true; // timesyncd synchronised: the clock was stepped to the true time
    r.clock.set(r.clock.monotonic());
    await r.clock.advanceAsync(1000);
    assert.equal(r.sync.stamping, false);
    assert.deepEqual(
      r.events.map((e) => [e.via, e.offset]),
      [['source', 3 * HOUR]],
    );
    assert.deepEqual(r.shifts, [3 * HOUR]);
    assert.deepEqual(r.holds, [true, false], 'released once the offset is written');
    assert.equal(r.sync.stampClock.now(), r.clock.now(), 'later readings carry the wall clock');

    // The second early reading was still waiting: its commit corrects it, and a later one is kept.
    observer.reading(reading(r.sync.stampClock.now()));
    const c = r.sync.commit(got.slice(1));
    assert.equal(c.stamp, undefined);
    assert.deepEqual(
      c.readings.map((x) => x.ts),
      [TRUE_NOW + 500, TRUE_NOW + 1500],
    );
    assert.equal(r.sync.status().offsetMs, 3 * HOUR);
    await r.sync.stop();
  });

  it('takes a jump of the wall clock as the sync, and a step before it does not distort stamps', async () => {
    const r = rig();
    await r.sync.start();
    const before = r.sync.stampClock.now();
    r.clock.set(r.clock.now() + 5000); // a small step (under the threshold): not a sync
    await r.clock.advanceAsync(1000);
    assert.equal(r.sync.stamping, true);
    assert.equal(r.sync.stampClock.now(), before + 1000, 'stamps follow monotonic time, not the step');
    r.clock.set(r.clock.monotonic()); // NTP steps 3 h forward; the source never says anything
    await r.clock.advanceAsync(1000);
    assert.deepEqual(
      r.events.map((e) => [e.via, e.offset]),
      [['jump', 3 * HOUR]],
    );
    await r.sync.stop();
  });

  it('releases the hold after holdMs without a sync, and keeps stamping for a later correction', async () => {
    const r = rig({ holdMs: 5000 });
    await r.sync.start();
    await r.clock.advanceAsync(5000);
    assert.deepEqual(r.holds, [true, false]);
    assert.equal(r.sync.stamping, true);
    assert.equal(r.events.length, 0);
    await r.sync.stop();
    assert.equal(r.clock.pending, 0, 'stop clears its timers');
  });

  it('a clock good from the start: wall-clock stamps, no stamp on commits, no hold, the same array', async () => {
    const r = rig({ synced: true });
    await r.sync.start();
    assert.equal(r.sync.stamping, false);
    assert.deepEqual(r.holds, []);
    assert.deepEqual(
      r.events.map((e) => [e.via, e.offset]),
      [['start', null]],
      'a start in sync still lets the queue correct an earlier run of this boot',
    );
    r.clock.set(r.clock.now() + HOUR);
    assert.equal(r.sync.stampClock.now(), r.clock.now());
    const batch = [reading(1), reading(2)];
    const c = r.sync.commit(batch);
    assert.equal(c.readings, batch, 'nothing is copied on the hot path');
    assert.equal(c.stamp, undefined);
    assert.equal(r.clock.pending, 0, 'nothing polls');
    await settle();
    await r.sync.stop();
  });

  it('TimestampGuard: nothing marked bad while stamping is deferred; shift() keeps order across the sync', () => {
    const clock = new FakeClock(0); // 1970: implausible
    let deferred = true;
    const guard = new TimestampGuard({ clock, buildTime: 1000, deferred: () => deferred });
    const out: Reading[] = [];
    const obs = guard.wrap({ reading: (x) => out.push(x), error: () => undefined, overrun: () => undefined });
    // Stamped on a base an hour ahead of true time, then the sync corrects by −1 h.
    obs.reading(reading(TRUE_NOW + HOUR));
    assert.equal(out[0]?.quality, 'good', 'not marked bad while the correction is pending');
    assert.equal(guard.clockIssue(), null);
    deferred = false;
    clock.set(TRUE_NOW + 2000);
    guard.shift(-HOUR);
    obs.reading(reading(TRUE_NOW + 2000));
    assert.equal(out[1]?.ts, TRUE_NOW + 2000, 'not held at the uncorrected last ts');
  });
});
