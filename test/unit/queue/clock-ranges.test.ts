// The queue's clock ranges on a real LevelDB with a real sealer: records committed with a
// ClockStamp are corrected on the read path once the sync's measurement is written, across a
// restart of the queue too; another boot's uncorrected ranges are published `unsynced`; this boot's
// are held back (not even counted by lastSeq) until the sync or the release.

import assert from 'node:assert/strict';
import { QueueRecordSource } from '../../../src/queue/record-source.js';
import { META_CLOCK, parseRanges } from '../../../src/queue/clock-ranges.js';
import type { SealedQueue } from '../../../src/queue/sealed-queue.js';
import { fixedReadings, queueFixture, type QueueFixture } from '../../helpers/queue.js';

const BOOT_A = '6f1c1c9e-boot-a';
const BOOT_B = '0b2e0e7a-boot-b';
/** A board that booted in 1970: wall − since-boot was 0 while it stamped. */
const STAMP = { boot: BOOT_A, base: 0 };
const T_EARLY = 60_000; // 60 s after boot, as the unsynced clock stamped it
const TRUE_BASE = 1_764_380_000_000; // wall − since-boot once NTP stepped the clock

describe('queue clock ranges (real LevelDB, real sealer)', () => {
  let fx: QueueFixture;
  beforeEach(async () => {
    fx = await queueFixture();
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  const source = (q: SealedQueue) =>
    new QueueRecordSource(
      q,
      (rec) => fx.sealer.open(rec),
      () => undefined,
    );

  it('corrects records sealed before the sync, also after a restart of the queue', async () => {
    const q = fx.make();
    await q.start();
    await q.append(fixedReadings(3, T_EARLY), STAMP);
    await q.append(fixedReadings(3, T_EARLY + 1000), STAMP);
    await q.append(fixedReadings(2, TRUE_BASE + 90_000)); // after the sync: stamped right
    assert.deepEqual(
      q.clockRanges.list().map((r) => [r.from, r.to, r.offset]),
      [[1, 2, null]],
      'one range for the two stamped commits',
    );
    await q.stop();

    const q2 = fx.make();
    await q2.start();
    assert.equal(q2.clockRanges.pending(1), 1, 'the range survived the restart');
    const corrected = await q2.clockSynced(BOOT_A, TRUE_BASE);
    assert.deepEqual(
      corrected.map((r) => r.offset),
      [TRUE_BASE],
    );
    const recs = await source(q2).next(0, 10);
    assert.deepEqual(
      recs.map((r) => r.readings.map((x) => x.ts)),
      [
        [TRUE_BASE + T_EARLY, TRUE_BASE + T_EARLY + 1, TRUE_BASE + T_EARLY + 2],
        [TRUE_BASE + T_EARLY + 1000, TRUE_BASE + T_EARLY + 1001, TRUE_BASE + T_EARLY + 1002],
        [TRUE_BASE + 90_000, TRUE_BASE + 90_001],
      ],
    );
    assert.ok(recs.flat().every((r) => r.readings.every((x) => x.quality === 'good')));
    await q2.stop();

    const q3 = fx.make({ readOnly: true });
    await q3.start();
    assert.equal(q3.clockRanges.list()[0]?.offset, TRUE_BASE, 'the offset is on disk');
    await q3.stop();
  });

  it('publishes a range of another boot that never synced with quality unsynced, times as stamped', async () => {
    const q = fx.make();
    await q.start();
    await q.append(
      [...fixedReadings(2, T_EARLY), { sensor: 'door-1', ts: T_EARLY, value: true, quality: 'bad' }],
      STAMP,
    );
    q.holdClock(BOOT_B, false);
    // The new boot synced: nothing of boot A can be corrected with it.
    assert.deepEqual(await q.clockSynced(BOOT_B, TRUE_BASE), []);
    const [rec] = await source(q).next(0, 10);
    assert.deepEqual(
      rec?.readings.map((x) => [x.ts, x.quality]),
      [
        [T_EARLY, 'unsynced'],
        [T_EARLY + 1, 'unsynced'],
        [T_EARLY, 'bad'],
      ],
      'good becomes unsynced; bad stays bad',
    );
    assert.equal(q.clockRanges.pending(1), 1);
    await q.delete(1);
    assert.equal(q.clockRanges.pending(2), 0, 'a delivered range is no longer pending');
  });

  it("holds this boot's unsynced records back until the sync, then tells the followers", async () => {
    const q = fx.make();
    await q.start();
    await q.append(fixedReadings(2, TRUE_BASE)); // seq 1: an earlier, synced run
    q.holdClock(BOOT_A, true);
    await q.append(fixedReadings(2, T_EARLY), STAMP); // seq 2, 3: stamped unsynced
    await q.append(fixedReadings(2, T_EARLY + 500), STAMP);
    const src = source(q);
    let told = 0;
    src.onAppend(() => told++);
    assert.deepEqual(
      (await src.next(0, 10)).map((r) => r.seq),
      [1],
      'the held records are not returned',
    );
    assert.equal(src.lastSeq(), 1, 'nor counted as committed for the uplink');
    await q.clockSynced(BOOT_A, TRUE_BASE);
    q.holdClock(BOOT_A, false);
    assert.ok(told >= 1, 'the followers are told to read on');
    assert.equal(src.lastSeq(), 3);
    const recs = await src.next(1, 10);
    assert.deepEqual(
      recs.map((r) => r.readings[0]?.ts),
      [TRUE_BASE + T_EARLY, TRUE_BASE + T_EARLY + 500],
    );
  });

  it('a release without a sync publishes the held records unsynced', async () => {
    const q = fx.make();
    await q.start();
    q.holdClock(BOOT_A, true);
    await q.append(fixedReadings(1, T_EARLY), STAMP);
    assert.deepEqual(await source(q).next(0, 10), []);
    q.holdClock(BOOT_A, false);
    const [rec] = await source(q).next(0, 10);
    assert.equal(rec?.readings[0]?.quality, 'unsynced');
  });

  it('a queue whose clock was good from the start writes no range and returns records as opened', async () => {
    const q = fx.make();
    await q.start();
    q.holdClock(BOOT_A, false);
    await q.append(fixedReadings(2, TRUE_BASE));
    assert.deepEqual(await q.clockSynced(BOOT_A, TRUE_BASE), []);
    assert.equal(q.clockRanges.list().length, 0);
    const [rec] = await source(q).next(0, 10);
    assert.deepEqual(rec?.readings, fixedReadings(2, TRUE_BASE));
  });

  it('reads malformed stored ranges as none', () => {
    assert.deepEqual(parseRanges(new TextEncoder().encode('{"not":"a list"}')), []);
    assert.deepEqual(parseRanges(new TextEncoder().encode('[{"boot":1}]')), []);
    assert.deepEqual(parseRanges(undefined), []);
    assert.equal(META_CLOCK.length, 8);
  });
});
