// Issue 6, break 2: the queue on a small, real filesystem (a 4 MiB tmpfs; CI runs as root).
// maxBytes bounds the folder's real size, the free-space reserve keeps the filesystem from
// filling, a failed write neither loses what was written after it nor reuses a seq, and the
// queue opens again on a full filesystem.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Sealer } from '../../../src/seal/sealer.js';
import { SealedQueue, type QueueStats, type SealedQueueOptions } from '../../../src/queue/sealed-queue.js';
import { EdgegwError } from '../../../src/errors.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { captureLog, fixedReadings, type LogLines } from '../../helpers/queue.js';
import { smallFs, type SmallFs } from '../../helpers/small-fs.js';

const MiB = 1024 * 1024;

/** The folder's real size, counted here independently of the queue (allocated blocks). */
async function folderSize(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) {
    // LevelDB may delete an obsolete log or table between the readdir and the stat.
    total += ((await stat(join(dir, name)).catch(() => null))?.blocks ?? 0) * 512;
  }
  return total;
}

/** Samples the folder's size every few ms (LevelDB's compactions run in the background). */
function sampleSize(dir: string): { largest(): Promise<number> } {
  let largest = 0;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void folderSize(dir)
      .then((n) => (largest = Math.max(largest, n)))
      .finally(() => (busy = false));
  }, 2);
  return {
    largest: async () => {
      clearInterval(timer);
      return Math.max(largest, await folderSize(dir));
    },
  };
}

/** committed = delivered + dropped + quarantined + queued, for records and readings. */
function assertBalanced(s: QueueStats): void {
  const t = s.totals;
  assert.equal(t.committedRecords, t.deliveredRecords + t.droppedRecords + t.quarantinedRecords + s.records);
  assert.equal(
    t.committedReadings,
    t.deliveredReadings + t.droppedReadings + t.quarantinedReadings + s.readings,
  );
}

describe('queue/SealedQueue on a full disk (4 MiB tmpfs)', function () {
  this.timeout(60_000);
  let fs: SmallFs;
  let sealer: Sealer;
  let logs: LogLines;
  let made: SealedQueue[];
  let dir: string;

  const make = (over: Partial<SealedQueueOptions> = {}): SealedQueue => {
    const q = new SealedQueue({
      dir,
      maxBytes: MiB,
      whenFull: 'drop-oldest',
      durability: 'fsync',
      seal: (seq, readings) => sealer.seal(seq, readings),
      log: logs.log,
      ...over,
    });
    made.push(q);
    return q;
  };
  const writeErrors = () => logs.lines.filter((l) => l.code === 'EDGEGW_E_QUEUE_WRITE');

  beforeEach(async () => {
    fs = await smallFs(4 * MiB);
    dir = join(fs.dir, 'data');
    sealer = await Sealer.create(randomBytes(32));
    logs = captureLog();
    made = [];
  });
  afterEach(async () => {
    for (const q of made) await q.stop().catch(() => undefined);
    await fs.cleanup();
  });

  for (const whenFull of ['drop-oldest', 'reject-new'] as const) {
    it(`${whenFull}: the folder's real size stays under maxBytes with the broker down`, async () => {
      const q = make({ whenFull });
      await q.start();
      const sampler = sampleSize(dir);
      let refused = 0;
      for (let i = 0; i < 3000; i++) {
        if ((await q.append(fixedReadings(100))) === null) refused++;
      }
      const largest = await sampler.largest();
      assert.ok(largest <= MiB, `the queue folder took ${largest} bytes, more than maxBytes`);
      const s = q.stats();
      assert.deepEqual(writeErrors(), [], 'no write ever failed');
      assertBalanced(s);
      assert.ok(s.records > 300, `the budget holds records (${s.records})`);
      if (whenFull === 'drop-oldest') {
        assert.equal(s.nextSeq, 3001);
        assert.ok(s.totals.droppedRecords > 0);
        assert.equal(s.lostReadings, 0);
      } else {
        assert.ok(refused > 0);
        assert.equal(s.lostReadings, refused * 100, 'every refused reading is counted');
        assert.equal(s.totals.committedRecords, s.records);
      }
      await q.stop();
      const again = make({ whenFull });
      await again.start();
      assert.equal(again.stats().nextSeq, s.nextSeq);
      assert.equal(again.stats().records, s.records);
      assert.deepEqual(again.stats().totals, s.totals, 'the totals are stored');
      for (const rec of await again.read(0, 10)) sealer.open(rec);
    });
  }

  it('the broker up and the queue kept empty: acknowledged records do not fill the disk', async () => {
    const q = make();
    await q.start();
    const sampler = sampleSize(dir);
    for (let i = 0; i < 3000; i++) {
      const seq = await q.append(fixedReadings(100));
      assert.notEqual(seq, null);
      assert.equal(await q.delete(seq!), true);
    }
    const largest = await sampler.largest();
    assert.ok(largest <= MiB, `the queue folder took ${largest} bytes, more than maxBytes`);
    const s = q.stats();
    assert.equal(s.totals.deliveredRecords, 3000);
    assert.equal(s.totals.droppedRecords, 0, 'nothing was dropped to make room');
    assertBalanced(s);
  });

  for (const whenFull of ['drop-oldest', 'reject-new'] as const) {
    it(`${whenFull}: stops growing at the free-space reserve, then grows again once space is freed`, async () => {
      // maxBytes larger than the filesystem: only the reserve (512 KiB, 1/8 of 4 MiB) holds it back.
      const q = make({ whenFull, maxBytes: 64 * MiB, minFreeBytes: 64 * MiB });
      await q.start();
      await fs.fill(1200 * 1024);
      let lowest = Infinity;
      let refused = 0;
      for (let i = 0; i < 1500; i++) {
        if ((await q.append(fixedReadings(100))) === null) refused++;
        if (i % 25 === 0) lowest = Math.min(lowest, await fs.available());
      }
      assert.deepEqual(writeErrors(), [], 'the reserve kept every write from failing');
      // Within one measurement's slack (a few records) of the reserve, never below half of it.
      assert.ok(lowest >= 256 * 1024, `free space fell to ${lowest} bytes`);
      const s = q.stats();
      assertBalanced(s);
      // The filler, not the queue, took the room: dropping old records would free nothing
      // without a compaction that has no room either, so both policies refuse, and count it.
      assert.ok(refused > 0);
      assert.equal(s.lostReadings, refused * 100, 'every refused reading is counted');
      assert.ok(s.records > 100, `the queue kept what it had (${s.records} records)`);
      await fs.free();
      const before = s.records;
      for (let i = 0; i < 50; i++) assert.notEqual(await q.append(fixedReadings(100)), null);
      assert.equal(q.stats().records, before + 50, 'it grows again');
    });
  }

  for (const whenFull of ['drop-oldest', 'reject-new'] as const) {
    it(`${whenFull}: a failed write loses nothing written after it and never reuses a seq`, async () => {
      // A still clock: the queue measures the disk only when its headroom runs out, so the
      // filler below takes the space unseen and a write really fails (ENOSPC).
      const clock = new FakeClock();
      const q = make({ whenFull, minFreeBytes: 0, clock });
      await q.start();
      const kept: number[] = [];
      for (let i = 0; i < 20; i++) kept.push((await q.append(fixedReadings(100)))!);
      await fs.fill(3000);
      let failed = 0;
      let refused = 0;
      const attempt = async () => {
        try {
          const seq = await q.append(fixedReadings(100));
          if (seq !== null) kept.push(seq);
          else refused++;
        } catch (err) {
          assert.ok(err instanceof EdgegwError);
          assert.equal(err.code, 'EDGEGW_E_QUEUE_WRITE');
          failed++;
        }
      };
      for (let i = 0; i < 10; i++) await attempt();
      assert.ok(writeErrors().length > 0, 'a write failed on the full disk');
      await fs.free();
      for (let i = 0; i < 5; i++) await attempt();
      const s = q.stats();
      assert.equal(s.lostReadings, (failed + refused) * 100, 'every reading not kept is counted');
      const burned = logs.lines
        .filter((l) => l.reason === 'write-failed')
        .flatMap((l) => range(l.seqFrom as number, l.seqTo as number));
      const droppedSeqs = logs.lines
        .filter((l) => l.reason === 'whenFull')
        .flatMap((l) => range(l.seqFrom as number, l.seqTo as number));
      assert.equal(burned.length, failed, 'every failed append burned a seq, logged once');
      await q.stop();

      const again = make({ whenFull, minFreeBytes: 0, clock });
      await again.start();
      const stored = (await again.read(0, 1000)).map((r) => r.seq);
      // Everything append() returned is stored, unless the log says the whenFull policy dropped it.
      assert.deepEqual(
        stored,
        kept.filter((seq) => !droppedSeqs.includes(seq)),
      );
      for (const seq of burned) assert.ok(!stored.includes(seq), `burned seq ${seq} is not stored`);
      const handedOut = Math.max(...kept, ...burned);
      assert.ok(again.stats().nextSeq > handedOut, 'seq never goes back');
      assertBalanced(again.stats());
      assert.equal(again.stats().records, stored.length);
      const seq = await again.append(fixedReadings(1));
      assert.ok(seq !== null && seq > handedOut);
    });
  }

  it('is fatal (onFatal: the daemon exits for systemd) when it can neither write nor reopen', async () => {
    // maxBytes beyond the filesystem: no spare fits, so nothing gives LevelDB room to reopen.
    let fatal = 0;
    const q = make({ maxBytes: 64 * MiB, minFreeBytes: 0, clock: new FakeClock(), onFatal: () => fatal++ });
    await q.start();
    for (let i = 0; i < 20; i++) await q.append(fixedReadings(100));
    await fs.fill(0);
    const failures: string[] = [];
    // The log's last page may still take a record or two before a write fails.
    let kept = 20;
    for (let i = 0; i < 30 && fatal === 0; i++) {
      await q.append(fixedReadings(100)).then(
        () => kept++,
        (err: unknown) => {
          assert.ok(err instanceof EdgegwError);
          failures.push(err.code);
        },
      );
    }
    assert.equal(fatal, 1, 'onFatal was called once');
    await assert.rejects(q.append(fixedReadings(100)), /closed after a fatal write error/);
    assert.ok(failures.every((c) => c === 'EDGEGW_E_QUEUE_WRITE'));
    assert.equal(q.stats().lostReadings, (failures.length + 1) * 100, 'every reading not kept is counted');
    assert.ok(logs.lines.some((l) => l.level === 60 && l.code === 'EDGEGW_E_QUEUE_WRITE'));
    await q.stop();
    // Once space is back (systemd restarted it), nothing committed is lost and seq goes on.
    await fs.free();
    const again = make({ maxBytes: 64 * MiB });
    await again.start();
    assert.equal(again.stats().records, kept);
    assert.ok(again.stats().nextSeq > kept);
  });

  it('opens on a filesystem that filled up while it was stopped', async () => {
    const q = make();
    await q.start();
    for (let i = 0; i < 200; i++) await q.append(fixedReadings(100));
    await q.stop();
    await fs.fill(0);
    assert.ok((await fs.available()) < 4096);
    const again = make();
    await again.start();
    assert.equal(again.stats().records, 200);
    assert.equal(again.stats().nextSeq, 201);
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
