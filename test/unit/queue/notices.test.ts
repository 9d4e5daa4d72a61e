// Notice records (accounting issue, DESIGN.md §2.2, §3): every seq the queue gives up is
// explained in the stream by a notice in the same seq space, sealed, queued and deleted only
// after its ack. Real LevelDB, real libsodium, a real tmpfs for the full disk.

import assert from 'node:assert/strict';
import { closeSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { Level } from 'level';
import { randomBytes } from 'node:crypto';
import { EdgegwError } from '../../../src/errors.js';
import { Keyring } from '../../../src/seal/keyring.js';
import { repairQueue } from '../../../src/queue/repair.js';
import { MARK_STEP } from '../../../src/queue/seq-mark.js';
import { QueueRecordSource } from '../../../src/queue/record-source.js';
import { KIND_RECORD, queueKey } from '../../../src/queue/keys.js';
import { SEAL_EVERY_MS } from '../../../src/queue/notices.js';
import type { SealedQueue } from '../../../src/queue/sealed-queue.js';
import type { GapNotice, OpenRecord } from '../../../src/types.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { fixedReadings, queueFixture, type QueueFixture } from '../../helpers/queue.js';
import { smallFs, type SmallFs } from '../../helpers/small-fs.js';

/** Everything queued, opened (records and notices), oldest first. */
async function openAll(fx: QueueFixture, q: SealedQueue): Promise<OpenRecord[]> {
  return (await q.read(0, 100_000)).map((r) => fx.sealer.open(r));
}

/** The seqs in 1..last that neither `seen` (delivered or queued) nor a notice (range or own seq) explains. */
function unexplained(last: number, seen: Iterable<number>, notices: readonly OpenRecord[]): number[] {
  const ok = new Set(seen);
  for (const n of notices) {
    ok.add(n.seq);
    for (let s = n.notice!.from; s <= n.notice!.to; s++) ok.add(s);
  }
  const out: number[] = [];
  for (let s = 1; s <= last; s++) if (!ok.has(s)) out.push(s);
  return out;
}

function gaps(recs: readonly OpenRecord[]): GapNotice[] {
  return recs.flatMap((r) => (r.notice === undefined ? [] : [r.notice]));
}

describe('queue/notice records', function () {
  this.timeout(60_000);
  let fx: QueueFixture;
  beforeEach(async () => {
    fx = await queueFixture();
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  it('drop-oldest: notices whose ranges and reading counts are what was dropped; never dropped themselves', async () => {
    const clock = new FakeClock();
    const probe = fx.make({ clock });
    await probe.start();
    await probe.append(fixedReadings(5));
    const size = probe.stats().bytes;
    await probe.delete(1);
    await probe.stop();

    // Room for 4 records: every append past them drops the oldest.
    const q = fx.make({ maxBytes: size * 4 + size - 1, clock });
    await q.start();
    const kept: number[] = [];
    for (let i = 0; i < 40; i++) {
      kept.push((await q.append(fixedReadings(5)))!);
      // Every fourth append a notice is due: the drops in between coalesce into one.
      clock.advance(SEAL_EVERY_MS / 4 + 1);
    }
    const s = q.stats();
    const all = await openAll(fx, q);
    const notices = all.filter((r) => r.notice !== undefined);
    const records = all.filter((r) => r.notice === undefined);
    assert.equal(records.length, 4, 'the budget holds 4 records');
    assert.ok(notices.length >= 2, `several notices were made (${notices.length})`);
    assert.ok(notices.length <= 12, `drops within ${SEAL_EVERY_MS} ms coalesce (${notices.length} notices)`);
    assert.equal(s.notices, notices.length);

    // The status counters (since start) count the notices apart from the readings.
    assert.equal(q.sinceStart().notices, s.noticeTotals.committed);
    assert.equal(q.sinceStart().droppedReadings, s.totals.droppedReadings);

    // What the notices (sealed and pending) say was dropped is exactly what the totals count.
    const said = [...gaps(all), ...(await pendingAfterStop(fx, q, clock))];
    assert.ok(said.every((g) => g.why === 'dropped'));
    const droppedSeqs = said.flatMap((g) => seqs(g.from, g.to));
    assert.equal(droppedSeqs.length, new Set(droppedSeqs).size, 'no seq is explained twice');
    const t = s.totals;
    assert.equal(droppedSeqs.length, t.droppedRecords);
    assert.equal(
      said.reduce((sum, g) => sum + g.readings!, 0),
      t.droppedReadings,
      'the notices count the dropped readings',
    );
    assert.deepEqual(
      droppedSeqs.sort((a, b) => a - b),
      kept.filter((seq) => !records.some((r) => r.seq === seq)),
      'the dropped seqs are the records appended and no longer queued',
    );
    // Data totals stay exact; notices are counted apart.
    assert.equal(
      t.committedRecords,
      t.deliveredRecords + t.droppedRecords + t.quarantinedRecords + s.records,
    );
    assert.equal(t.committedReadings, t.deliveredReadings + t.droppedReadings + s.readings);
  });

  it('every seq handed out is queued, acknowledged, or explained by a notice; acked notices are gone for good', async () => {
    const clock = new FakeClock();
    const probe = fx.make({ clock });
    await probe.start();
    await probe.append(fixedReadings(3));
    const size = probe.stats().bytes;
    await probe.delete(1);
    await probe.stop();
    const q = fx.make({ maxBytes: size * 3 + size - 1, clock });
    await q.start();
    const acked = new Set([1]);
    /** The notices the "consumer" received: their ranges explain seqs even once deleted. */
    const delivered: OpenRecord[] = [];
    for (let i = 0; i < 30; i++) {
      await q.append(fixedReadings(3));
      clock.advance(SEAL_EVERY_MS + 1);
      // The uplink acks a notice now and then (it is read like a record).
      if (i % 7 === 6) {
        const first = (await openAll(fx, q)).find((r) => r.notice !== undefined);
        if (first !== undefined) {
          assert.equal(await q.delete(first.seq), true);
          acked.add(first.seq);
          delivered.push(first);
        }
      }
    }
    await q.stop();
    const again = fx.make({ maxBytes: size * 3 + size - 1, clock });
    await again.start();
    const all = await openAll(fx, again);
    for (const seq of acked) assert.ok(!all.some((r) => r.seq === seq), `acked seq ${seq} is not read again`);
    const last = again.stats().nextSeq - 1;
    const seen = [...acked, ...all.map((r) => r.seq)];
    assert.deepEqual(
      unexplained(last, seen, [...delivered, ...all.filter((r) => r.notice !== undefined)]),
      [],
    );
    const n = again.stats().noticeTotals;
    assert.equal(n.committed, n.delivered + n.quarantined + again.stats().notices);
    assert.ok(n.delivered >= 1);
  });

  it('a tampered record yields a quarantined notice with its reading count; a tampered notice is explained too', async () => {
    const q0 = fx.make();
    await q0.start();
    for (const n of [2, 3, 4]) await q0.append(fixedReadings(n));
    await q0.stop();
    await flipByte(fx.dir, 2);
    const q = fx.make();
    await q.start();
    const source = new QueueRecordSource(
      q,
      (rec) => fx.sealer.open(rec),
      () => undefined,
    );
    assert.deepEqual(
      (await source.next(0, 10)).map((r) => r.seq),
      [1, 3],
    );
    const recs = await source.next(0, 10);
    assert.deepEqual(gaps(recs), [{ from: 2, to: 2, why: 'quarantined', readings: 3 }]);
    const notice = recs.find((r) => r.notice !== undefined)!;
    assert.equal(notice.seq, 4);
    assert.equal(q.sinceStart().quarantinedRecords, 1);

    // The notice itself altered on disk: quarantined, and its own seq explained by the next.
    await q.stop();
    const db = new Level<Uint8Array, Uint8Array>(fx.dir, { keyEncoding: 'view', valueEncoding: 'view' });
    const key = Uint8Array.of(0x0a, 0, 0, 0, 0, 0, 0, 4);
    const v = Uint8Array.from(await db.get(key));
    v[v.length - 1]! ^= 1;
    await db.put(key, v);
    await db.close();
    const q2 = fx.make();
    await q2.start();
    const source2 = new QueueRecordSource(
      q2,
      (rec) => fx.sealer.open(rec),
      () => undefined,
    );
    assert.deepEqual(
      (await source2.next(0, 10)).map((r) => r.seq),
      [1, 3],
    );
    await q2.append(fixedReadings(1));
    const after = await source2.next(0, 10);
    assert.deepEqual(gaps(after), [{ from: 4, to: 4, why: 'quarantined', readings: 0 }]);
    assert.equal(q2.stats().noticeTotals.quarantined, 1);
    assert.deepEqual(q2.stats().totals.quarantinedRecords, 1, 'a notice is not counted as a data record');
  });
});

describe('queue/notice records after a repair', () => {
  it('the records repair quarantines and the seqs it skips are explained by notices at the next start', async () => {
    const ring = await Keyring.fromKeys({ key: randomBytes(32), file: '/etc/edgegw/queue.key' });
    const keys = {
      current: ring.currentId,
      files: ring.files(),
      identify: (...a: Parameters<Keyring['identify']>) => ring.identify(...a),
    };
    const fx = await queueFixture();
    const make = () =>
      fx.make({
        seal: (seq, readings) => ring.seal(seq, readings),
        sealNotice: (seq, notice, t0) => ring.sealNotice(seq, notice, t0),
        keys,
      });
    try {
      const q = make();
      await q.start();
      for (const n of [2, 3, 4, 5]) await q.append(fixedReadings(n));
      await q.stop();
      await flipByte(fx.dir, 3);
      const r = await repairQueue(fx.dir, keys);
      assert.deepEqual(r.quarantined, [3]);
      assert.deepEqual(r.skipped, { from: 5, to: MARK_STEP });
      const again = make();
      await again.start();
      assert.equal(again.stats().pendingGaps, 2, 'the gaps wait in the meta for the first commit');
      const seq = await again.append(fixedReadings(1));
      assert.equal(seq, MARK_STEP + 1);
      const all = (await again.read(0, 100)).map((rec) => ring.open(rec, null));
      assert.deepEqual(gaps(all), [
        { from: 3, to: 3, why: 'quarantined', readings: 4 },
        { from: 5, to: MARK_STEP, why: 'skipped', readings: null },
      ]);
      assert.deepEqual(
        all.map((rec) => rec.seq),
        [1, 2, 4, MARK_STEP + 1, MARK_STEP + 2, MARK_STEP + 3],
      );
      assert.deepEqual(
        unexplained(
          again.stats().nextSeq - 1,
          all.map((rec) => rec.seq),
          all.filter((rec) => rec.notice),
        ),
        [],
      );
    } finally {
      await fx.cleanup();
    }
  });
});

describe('queue/notice records on a full disk (4 MiB tmpfs)', function () {
  this.timeout(60_000);
  let fs: SmallFs;
  let fx: QueueFixture;
  beforeEach(async () => {
    fs = await smallFs(4 * 1024 * 1024);
    fx = await queueFixture();
  });
  afterEach(async () => {
    await fx.cleanup();
    await fs.cleanup();
  });

  it('a seq burned by a failed write (ENOSPC) is explained by a write-failed notice once the disk has room', async () => {
    const clock = new FakeClock();
    const dir = join(fs.dir, 'data');
    const filler = join(fs.dir, 'filler-after-reopen');
    // The first attempt fails on a full disk; the reopen then has the spare's room; right after
    // it, the disk is filled again (synchronously, from the log line), so the retry fails too;
    // then the refill is removed, so the reopen after the retry succeeds: the seq is burned.
    let armed = false;
    const log = pino(
      { level: 'debug' },
      {
        write(line: string) {
          if (!armed) return;
          if (line.includes('queue database reopened after a failed write')) fillSync(filler, 0);
          else if (line.includes('"attempt":2')) {
            armed = false;
            rmSync(filler);
          }
        },
      },
    );
    const opts = { dir, maxBytes: 1024 * 1024, whenFull: 'reject-new' as const, minFreeBytes: 0, clock, log };
    const q = fx.make(opts);
    await q.start();
    for (let i = 0; i < 20; i++) await q.append(fixedReadings(100));
    await fs.fill(3000);
    armed = true;
    // The disk's last bytes go to the first few appends; then one fails.
    let seq = 0;
    let failed: unknown = null;
    for (let i = 0; i < 10 && failed === null; i++) {
      seq = q.stats().nextSeq;
      failed = await q.append(fixedReadings(BIG)).then(
        () => null,
        (err: unknown) => err,
      );
    }
    assert.ok(failed instanceof EdgegwError, 'an append failed on the full disk');
    assert.equal(armed, false, 'the retry after the reopen failed too');
    assert.equal(q.stats().nextSeq, seq + 1, `seq ${seq} was burned (${String(failed)})`);
    await fs.free();
    const next = await q.append(fixedReadings(1));
    assert.equal(next, seq + 1);
    await q.stop();

    const again = fx.make({ ...opts, log: fx.logs.log });
    await again.start();
    const all = await openAll(fx, again);
    assert.deepEqual(gaps(all), [{ from: seq, to: seq, why: 'write-failed', readings: BIG }]);
    const notice = all.find((r) => r.notice !== undefined)!;
    assert.equal(notice.seq, seq + 2, 'the notice took the seq after the next record');
    const last = again.stats().nextSeq - 1;
    assert.deepEqual(
      unexplained(
        last,
        all.map((r) => r.seq),
        [notice],
      ),
      [],
    );
  });
});

const BIG = 100;

/** Fills the filesystem of `path` until at most `leave` bytes are free, synchronously. */
function fillSync(path: string, leave: number): void {
  const fd = openSync(path, 'a');
  const chunk = Buffer.alloc(4096, 0x5a);
  try {
    for (;;) {
      const st = statfsSync(path);
      const free = st.bavail * st.bsize;
      if (free <= leave) break;
      writeSync(fd, chunk.subarray(0, Math.min(chunk.length, free - leave)));
    }
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

/** The notices still pending when `q` stops are sealed by the stop: read them back. */
async function pendingAfterStop(fx: QueueFixture, q: SealedQueue, clock: FakeClock): Promise<GapNotice[]> {
  const before = new Set((await q.read(0, 100_000)).map((r) => r.seq));
  await q.stop();
  const again = fx.make({ clock });
  await again.start();
  const fresh = (await openAll(fx, again)).filter((r) => !before.has(r.seq));
  await again.stop();
  return gaps(fresh);
}

function seqs(from: number, to: number): number[] {
  const out: number[] = [];
  for (let s = from; s <= to; s++) out.push(s);
  return out;
}

async function flipByte(dir: string, seq: number): Promise<void> {
  const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  const v = Uint8Array.from(await db.get(queueKey(KIND_RECORD, seq)));
  v[v.length - 20]! ^= 0x80;
  await db.put(queueKey(KIND_RECORD, seq), v);
  await db.close();
}
