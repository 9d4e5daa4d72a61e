// Write-behind (src/queue/write-behind.ts) on a real LevelDB with real sealing and a fake clock:
// held records are written only when their PUBACK is late, the window bounds them, a clean stop
// commits them, and a start after a crash never reuses a seq and explains what it cannot know.

import assert from 'node:assert/strict';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { FakeClock } from '../../helpers/fake-clock.js';
import { waitFor } from '../../helpers/site.js';
import { fixedReadings, queueFixture, type QueueFixture } from '../../helpers/queue.js';
import { openedForm } from '../../../src/seal/sealer.js';
import { RESERVE_STEP, WRITE_MARGIN_MS } from '../../../src/queue/write-behind.js';
import type { SealedQueue } from '../../../src/queue/sealed-queue.js';
import type { Reading } from '../../../src/types.js';

const FLUSH = 200;

describe('queue/write-behind', () => {
  let fx: QueueFixture;
  let clock: FakeClock;
  let room: number;
  let queue: SealedQueue;

  beforeEach(async () => {
    fx = await queueFixture();
    clock = new FakeClock();
    room = 4;
    queue = fx.make({ clock, opened: openedForm, writeBehind: () => room });
    await queue.start();
    queue.onAppend(() => undefined);
  });
  afterEach(() => fx.cleanup());

  /** Appends as the batcher does: the first reading arrived now, durable by 2 × flush. */
  const append = (n: number): Promise<number | null> =>
    queue.append(fixedReadings(n), undefined, clock.monotonic() + 2 * FLUSH);

  it('hands a record out unwritten; acknowledged in time, it is never written and counted once', async () => {
    assert.equal(await append(3), 1);
    let s = queue.stats();
    assert.deepEqual([s.held, s.records, s.nextSeq], [1, 0, 2]);
    // The uplink reads it like any record, and gets the open form it already had.
    const [rec] = await queue.read(0, 10);
    assert.equal(rec?.seq, 1);
    assert.deepEqual(queue.heldOpen(1), fx.sealer.open(rec));

    assert.equal(await queue.delete(1), true);
    await clock.advanceAsync(10 * FLUSH);
    s = queue.stats();
    assert.deepEqual([s.held, s.records, s.readings], [0, 0, 0]);
    assert.equal(s.totals.committedRecords, 1);
    assert.equal(s.totals.committedReadings, 3);
    assert.equal(s.totals.deliveredRecords, 1);
    assert.equal(s.totals.deliveredReadings, 3);
    assert.equal(queue.sinceStart().writtenReadings, 0, 'committed, never written');
    assert.equal(await queue.delete(1), false, 'a second PUBACK is not counted again');
  });

  it('commits a held record whose PUBACK is late, before its deadline', async () => {
    await append(2);
    await clock.advanceAsync(2 * FLUSH - WRITE_MARGIN_MS - 1);
    assert.equal(queue.stats().records, 0, 'not written while its PUBACK may still come');
    await clock.advanceAsync(1);
    await waitFor(() => queue.stats().records === 1, 5000, 'the late record on disk');
    const s = queue.stats();
    assert.deepEqual([s.held, s.records, s.readings], [0, 1, 2]);
    assert.equal(s.totals.committedRecords, 1);
    assert.equal(queue.sinceStart().writtenReadings, 2, 'its PUBACK was late: written');
    // Its late PUBACK deletes it as any committed record: delivered once, committed once.
    assert.equal(await queue.delete(1), true);
    const t = queue.stats().totals;
    assert.deepEqual([t.committedRecords, t.deliveredRecords, t.deliveredReadings], [1, 1, 2]);
  });

  it('holds at most the window; when it is full, only the oldest held goes to disk, in seq order', async () => {
    room = 2;
    await append(1);
    await append(1);
    assert.equal(queue.stats().held, 2);
    assert.equal(await append(1), 3);
    let s = queue.stats();
    assert.deepEqual([s.held, s.records, s.firstSeq], [2, 1, 1], 'seq 1 written to make room for seq 3');
    assert.deepEqual(
      (await queue.read(0, 10)).map((r) => r.seq),
      [1, 2, 3],
    );
    // The two held in time are never written.
    assert.equal(await queue.delete(2), true);
    assert.equal(await queue.delete(3), true);
    await clock.advanceAsync(10 * FLUSH);
    s = queue.stats();
    assert.deepEqual([s.held, s.records], [0, 1]);
    assert.equal(s.totals.committedRecords, 3);
    // A smaller window (a broker's receive maximum) frees as many as it must, oldest first.
    room = 3;
    for (let i = 0; i < 3; i++) await append(1);
    room = 1;
    assert.equal(await append(1), 7);
    s = queue.stats();
    assert.deepEqual([s.held, s.records], [1, 4]);
    assert.deepEqual(
      (await queue.read(0, 10)).map((r) => r.seq),
      [1, 4, 5, 6, 7],
    );
  });

  it('commits at once while the uplink has no room (down)', async () => {
    room = 0;
    await append(1);
    assert.deepEqual([queue.stats().held, queue.stats().records], [0, 1]);
  });

  it('a held record the full policy refuses at its commit is given up and explained, never silent', async () => {
    await append(2);
    await queue.setLimits({ maxBytes: 1, whenFull: 'reject-new' });
    await clock.advanceAsync(2 * FLUSH);
    await waitFor(() => queue.stats().held === 0, 5000, 'the held record settled');
    const s = queue.stats();
    assert.equal(s.records, 0);
    assert.equal(s.lostReadings, 2, 'its readings are counted lost');
    assert.equal(s.pendingGaps, 1, 'a gap explains its seq');
    // Given-up ranges are logged at once or, rate-limited, at the latest at stop.
    await queue.stop();
    assert.ok(
      fx.logs.lines.some((l) => l.seqFrom === 1 && l.seqTo === 1 && l.reason === 'write-failed'),
      'its seq is logged as given up',
    );
  });

  it('a clean stop commits what is held; the next start continues with no gap', async () => {
    await append(2);
    await append(2);
    assert.equal(await queue.delete(1), true);
    await queue.stop();
    const again = fx.make();
    await again.start();
    const s = again.stats();
    assert.deepEqual([s.records, s.firstSeq, s.nextSeq, s.pendingGaps], [1, 2, 3, 0]);
  });

  it('after a crash with records held, a start continues above every seq handed out and explains the rest', async () => {
    await append(1);
    await append(1);
    assert.equal(await queue.delete(1), true);
    // Seq 2 is late: committed. Seq 3 is held when the process dies.
    await clock.advanceAsync(2 * FLUSH);
    await append(1);
    const crashed = join(fx.dir, '..', 'crashed');
    await cp(fx.dir, crashed, { recursive: true });
    const after = fx.make({ dir: crashed });
    await after.start();
    const s = after.stats();
    assert.equal(s.records, 1, 'the committed record is there');
    assert.ok(s.nextSeq >= 1 + RESERVE_STEP, `nextSeq ${s.nextSeq} is above the reservation`);
    assert.equal(s.pendingGaps, 1);
    // The gap is sealed into a notice by the next write: it covers the held seq 3 and the seqs
    // reserved but never used, not the committed seq 2.
    await after.append(fixedReadings(1));
    const notices = (await after.read(0, 10)).filter((r) => r.count === 0).map((r) => fx.sealer.open(r));
    assert.deepEqual(
      notices.map((n) => n.notice),
      [{ from: 3, to: s.nextSeq - 1, why: 'skipped', readings: null }],
    );
    await after.stop();
  });

  it('never reuses a seq across repeated crashes', async () => {
    const used: number[] = [];
    let dir = fx.dir;
    for (let i = 0; i < 3; i++) {
      const q = i === 0 ? queue : fx.make({ dir, clock, opened: openedForm, writeBehind: () => room });
      if (i > 0) {
        await q.start();
        q.onAppend(() => undefined);
      }
      const seq = await q.append(fixedReadings(1), undefined, clock.monotonic() + 2 * FLUSH);
      used.push(seq!);
      assert.equal(await q.delete(seq!), true);
      const next = join(fx.dir, '..', `crash-${i}`);
      await cp(dir, next, { recursive: true });
      dir = next;
    }
    assert.ok(
      used.every((s, i) => i === 0 || s > used[i - 1]!),
      `seqs ${used.join(',')} strictly increase`,
    );
  });
});

describe('seal/openedForm', () => {
  it('is what open() gives back for what seal() sealed', async () => {
    const fx = await queueFixture();
    try {
      const t = 1_764_380_000_000;
      const readings: Reading[] = [
        { sensor: 'a', ts: t, value: 21.6, quality: 'good' },
        { sensor: 'b', ts: t + 1.5, value: Number.NaN, quality: 'good' },
        { sensor: 'a', ts: t + 3, value: Number.POSITIVE_INFINITY, quality: 'stale' },
        { sensor: 'c', ts: t - 20, value: true, quality: 'bad' },
        { sensor: 'b', ts: t + 4, value: -0, quality: 'good' },
        { sensor: 'a', ts: t + 5, value: 0.1 + 0.2, quality: 'good' },
        { sensor: 'c', ts: -5, value: 123456789.123, quality: 'good' },
      ];
      assert.deepEqual(openedForm(7, readings), fx.sealer.open(fx.sealer.seal(7, readings)));
    } finally {
      await fx.cleanup();
    }
  });

  it('gives the readings themselves, not a copy, when the codec changes none of them', async () => {
    const fx = await queueFixture();
    try {
      const t = 1_764_380_000_000;
      const readings: Reading[] = [
        { sensor: 'a', ts: t, value: 21.6, quality: 'good' },
        { sensor: 'b', ts: t + 2, value: -0, quality: 'stale' },
        { sensor: 'c', ts: t + 3, value: false, quality: 'bad' },
      ];
      const opened = openedForm(8, readings);
      assert.equal(opened.readings, readings, 'no copy per reading on the hot path');
      assert.deepEqual(opened, fx.sealer.open(fx.sealer.seal(8, readings)));
    } finally {
      await fx.cleanup();
    }
  });
});
