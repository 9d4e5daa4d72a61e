// True timestamps end to end, in process: sim sensor → clock sync → batcher → sealed record →
// LevelDB → uplink over real TLS → aedes → subscriber. The wall clock reads 3 h behind (a board
// without a battery-backed clock) and the sync source is injected; boot ids too.
//  - readings taken before the sync are held on disk, then published with corrected times;
//  - a boot that ended before any sync: its readings go out with quality `unsynced` in a new boot;
//  - a restart in the same boot that starts synced corrects the earlier run's records.

import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon.js';
import type { SyncSource } from '../../src/sensors/sync-source.js';
import { systemClock, type Clock } from '../../src/types.js';
import { formatStatus } from '../../src/status/format.js';
import { captureLog } from '../helpers/queue.js';
import { subscribedSite, waitFor } from '../helpers/site.js';

const HOUR = 3_600_000;
/** Slack for a reading's true time: it was read between two Date.now() calls of the test. */
const SLACK_MS = 200;

/** The system clock with the wall clock set `shift` ms off, as a board booting without an RTC. */
function boardClock(): { clock: Clock; shift: { ms: number } } {
  const shift = { ms: -3 * HOUR };
  return { clock: { ...systemClock, now: () => Date.now() + shift.ms }, shift };
}

function source(): SyncSource & { ok: boolean } {
  const s = { name: 'test', ok: false, synced: () => Promise.resolve(s.ok) };
  return s;
}

describe('true timestamps (in process, real queue, uplink and broker)', function () {
  this.timeout(60_000);
  const fixture = subscribedSite({
    sensors: '  - { id: counter-1, sim: { wave: counter }, every: 50ms }',
    extra: 'clock: { poll: 100ms, hold: 10m }',
  });

  async function daemonWith(clock: Clock, src: SyncSource, bootId: string) {
    const logs = captureLog();
    const daemon = new Daemon({
      loaded: await loadConfig(fixture.site.configFile),
      log: logs.log,
      clock,
      clockSync: { source: src, bootId, sinceBoot: () => performance.now() },
    });
    return { daemon, logs };
  }

  it('holds readings taken before the sync on disk, then publishes them with corrected times', async () => {
    const { clock, shift } = boardClock();
    const src = source();
    const { daemon, logs } = await daemonWith(clock, src, 'boot-a');
    const trueStart = Date.now();
    await daemon.start();
    try {
      await waitFor(() => daemon.status.snapshot().queue.records >= 5, 15_000, '5 records sealed on disk');
      const before = daemon.status.snapshot();
      assert.equal(fixture.messages.length, 0, 'nothing is published with a wrong time');
      assert.equal(before.clock.synced, false);
      assert.equal(before.clock.holding, true);
      assert.equal(before.clock.pendingRanges, 1);
      const sealedBefore = before.queue.nextSeq - 1;
      assert.match(formatStatus(before), /clock {4}source test · 1 ranges uncorrected · held for the sync/);

      // NTP syncs: the wall clock steps to the true time and the source says so.
      shift.ms = 0;
      src.ok = true;
      // Live records go ahead of a backlog: wait for those sealed before the sync as well.
      await waitFor(
        () =>
          fixture.readings().some((r) => r.seq > sealedBefore + 3) &&
          fixture.readings().filter((r) => r.sensor === 'counter-1' && r.seq <= sealedBefore).length >= 5,
        15_000,
        'records from before and after the sync at the subscriber',
      );
      await daemon.stop();
      const trueEnd = Date.now();

      const readings = fixture.readings().filter((r) => r.sensor === 'counter-1');
      const early = readings.filter((r) => r.seq <= sealedBefore);
      assert.ok(early.length >= 5, 'the records sealed before the sync were published');
      for (const r of readings) {
        assert.equal(r.quality, 'good');
        assert.ok(
          r.ts >= trueStart - SLACK_MS && r.ts <= trueEnd + SLACK_MS,
          `seq ${r.seq}: ts ${new Date(r.ts).toISOString()} is not the true time of its reading`,
        );
      }
      // Counter values in order have non-decreasing times, across the sync too.
      const byValue = [...readings].sort((a, b) => Number(a.value) - Number(b.value));
      byValue.forEach((r, i) => i === 0 || assert.ok(r.ts >= byValue[i - 1]!.ts, `ts order at ${i}`));

      const after = daemon.status.snapshot().clock;
      assert.equal(after.synced, true);
      assert.equal(after.via, 'source');
      assert.ok(Math.abs((after.offsetMs ?? 0) - 3 * HOUR) < 50, `offset ${String(after.offsetMs)}`);
      assert.match(formatStatus(daemon.status.snapshot()), /early readings corrected by \d+ ms \(source\)/);
      const auditLine = logs.lines.find((l) => l.audit === 'clock-correction');
      assert.ok(auditLine !== undefined, 'the audit trail records the correction');
      assert.equal(auditLine.via, 'source');
      assert.match(String((auditLine.ranges as string[])[0]), new RegExp(`^1-\\d+:`));
    } finally {
      await daemon.stop();
    }
  });

  it("publishes a crashed boot's unsynced readings with quality unsynced after a restart in a new boot", async () => {
    const { clock, shift } = boardClock();
    const first = await daemonWith(clock, source(), 'boot-a');
    const trueStart = Date.now();
    await first.daemon.start();
    await waitFor(() => first.daemon.status.snapshot().queue.records >= 3, 15_000, '3 records on disk');
    // The boot ends before any sync (a stop here leaves the disk as a crash would: records held).
    await first.daemon.stop();
    const lastOfBootA = first.daemon.status.snapshot().queue.nextSeq - 1;
    const committedA = first.daemon.status.snapshot().counters.committed;
    assert.equal(fixture.messages.length, 0);

    shift.ms = 0;
    const src = source();
    src.ok = true; // the new boot starts with a synchronised clock
    const second = await daemonWith(clock, src, 'boot-b');
    await second.daemon.start();
    try {
      // Live records go first and the backlog drains beside them: wait for both, not one as a sign of the other.
      const oldReadings = (): number =>
        new Set(
          fixture
            .readings()
            .filter((r) => r.seq <= lastOfBootA)
            .map((r) => `${r.seq}/${String(r.value)}`),
        ).size;
      await waitFor(
        () => fixture.readings().some((r) => r.seq > lastOfBootA + 2) && oldReadings() >= committedA,
        15_000,
        "records of the new boot and boot A's backlog at the subscriber",
      );
      const readings = fixture.readings();
      const old = readings.filter((r) => r.seq <= lastOfBootA);
      const fresh = readings.filter((r) => r.seq > lastOfBootA);
      assert.equal(
        new Set(old.map((r) => `${r.seq}/${String(r.value)}`)).size,
        committedA,
        'every reading of boot A',
      );
      for (const r of old) {
        assert.equal(r.quality, 'unsynced', `seq ${r.seq}: its time cannot be known`);
        // As stamped: 3 h behind, never "corrected" with the new boot's offset.
        assert.ok(r.ts < trueStart - 2 * HOUR);
      }
      for (const r of fresh) assert.equal(r.quality, 'good');
      assert.ok(!second.logs.lines.some((l) => l.audit === 'clock-correction'), 'nothing to correct');
    } finally {
      await second.daemon.stop();
    }
  });

  it("corrects an earlier run's records when a restart in the same boot starts synchronised", async () => {
    const { clock, shift } = boardClock();
    const first = await daemonWith(clock, source(), 'boot-a');
    const trueStart = Date.now();
    await first.daemon.start();
    await waitFor(() => first.daemon.status.snapshot().queue.records >= 3, 15_000, '3 records on disk');
    await first.daemon.stop();
    const lastOfRun1 = first.daemon.status.snapshot().queue.nextSeq - 1;

    shift.ms = 0;
    const src = source();
    src.ok = true;
    const second = await daemonWith(clock, src, 'boot-a');
    await second.daemon.start();
    try {
      // Live records go ahead of a backlog: wait for both runs' records, in either order.
      await waitFor(
        () =>
          fixture.readings().some((r) => r.seq > lastOfRun1 + 2) &&
          fixture.readings().filter((r) => r.seq <= lastOfRun1).length >= 3,
        15_000,
        'records of both runs at the subscriber',
      );
      const old = fixture.readings().filter((r) => r.seq <= lastOfRun1);
      assert.ok(old.length >= 3);
      for (const r of old) {
        assert.equal(r.quality, 'good');
        assert.ok(Math.abs(r.ts - trueStart) < 15_000, `seq ${r.seq} corrected to the true time`);
      }
      const auditLine = second.logs.lines.find((l) => l.audit === 'clock-correction');
      assert.equal(auditLine?.via, 'start');
    } finally {
      await second.daemon.stop();
    }
  });
});
