import assert from 'node:assert/strict';
import { Batcher, batchWindow } from '../../../src/queue/batcher.js';
import type { Reading } from '../../../src/types.js';
import { FakeClock, settle } from '../../helpers/fake-clock.js';

interface Deferred {
  readings: Reading[];
  resolve(): void;
  reject(err: Error): void;
}

function reading(i: number): Reading {
  return { sensor: 's', ts: i, value: i, quality: 'good' };
}

describe('queue/Batcher', () => {
  let clock: FakeClock;
  let commits: Deferred[];
  let errors: unknown[];
  let batcher: Batcher;

  function make(flushMs = 200, maxReadings = 10): Batcher {
    return new Batcher({
      flushMs,
      maxReadings,
      clock,
      commit: (readings) =>
        new Promise<void>((resolve, reject) => {
          commits.push({ readings, resolve, reject });
        }),
      onError: (err) => errors.push(err),
    });
  }

  beforeEach(async () => {
    clock = new FakeClock();
    commits = [];
    errors = [];
    batcher = make();
    await batcher.start();
  });

  it('commits what arrived within flushMs, flushMs after the first reading', async () => {
    batcher.add(reading(1));
    clock.advance(150);
    batcher.add(reading(2));
    clock.advance(49);
    assert.equal(commits.length, 0);
    clock.advance(1);
    assert.equal(commits.length, 1);
    assert.deepEqual(
      commits[0]!.readings.map((r) => r.ts),
      [1, 2],
    );
    commits[0]!.resolve();
    await settle();
    assert.equal(batcher.stats().committedReadings, 2);
    clock.advance(10_000);
    assert.equal(commits.length, 1, 'no empty commits');
  });

  it('commits at once when maxReadings are waiting', () => {
    for (let i = 0; i < 10; i++) batcher.add(reading(i));
    assert.equal(commits.length, 1);
    assert.equal(commits[0]!.readings.length, 10);
    assert.equal(clock.pending, 0, 'the flush timer was cancelled');
  });

  it('keeps one commit in flight; readings arriving meanwhile go to the next', async () => {
    batcher.add(reading(1));
    clock.advance(200);
    assert.equal(commits.length, 1);
    batcher.add(reading(2));
    batcher.add(reading(3));
    clock.advance(1000);
    assert.equal(commits.length, 1, 'the deadline passed, but a commit is in flight');
    commits[0]!.resolve();
    await settle();
    assert.equal(commits.length, 2, 'the overdue readings go as soon as the first commit ends');
    assert.deepEqual(
      commits[1]!.readings.map((r) => r.ts),
      [2, 3],
    );
  });

  it('splits a backlog into commits of at most maxReadings', async () => {
    batcher.add(reading(0));
    clock.advance(200);
    for (let i = 1; i <= 25; i++) batcher.add(reading(i));
    assert.equal(commits.length, 1);
    for (let k = 0; k < 4; k++) {
      commits[k]!.resolve();
      await settle();
    }
    assert.deepEqual(
      commits.map((c) => c.readings.length),
      [1, 10, 10, 5],
    );
    assert.deepEqual(
      commits.flatMap((c) => c.readings.map((r) => r.ts)),
      Array.from({ length: 26 }, (_, i) => i),
    );
  });

  it('reports and counts a failed commit, and goes on', async () => {
    batcher.add(reading(1));
    batcher.add(reading(2));
    clock.advance(200);
    commits[0]!.reject(new Error('disk full'));
    await settle();
    assert.equal(errors.length, 1);
    assert.equal((errors[0] as Error).message, 'disk full');
    assert.equal(batcher.stats().failedReadings, 2);
    assert.equal(batcher.stats().failedBatches, 1);
    batcher.add(reading(3));
    clock.advance(200);
    commits[1]!.resolve();
    await settle();
    assert.equal(batcher.stats().committedReadings, 1);
  });

  it('stop() commits what it holds and waits for the commit in flight', async () => {
    batcher.add(reading(1));
    clock.advance(200);
    batcher.add(reading(2));
    let stopped = false;
    const stopping = batcher.stop().then(() => (stopped = true));
    await settle();
    assert.equal(stopped, false);
    assert.equal(commits.length, 1);
    commits[0]!.resolve();
    await settle();
    assert.equal(commits.length, 2, 'what it held goes after the in-flight commit');
    assert.equal(stopped, false);
    commits[1]!.resolve();
    await stopping;
    assert.equal(batcher.stats().committedReadings, 2);
    assert.equal(clock.pending, 0);

    batcher.add(reading(3));
    assert.equal(errors.length, 1, 'a reading after stop is reported, not silently kept');
    assert.equal(batcher.stats().failedReadings, 1);
  });

  it('setFlush() commits what waits at once, then follows the new interval and size', async () => {
    batcher.add(reading(1));
    clock.advance(50);
    batcher.setFlush({ flushMs: 1000, maxReadings: 2 });
    assert.equal(commits.length, 1, 'what waited under the old interval is committed now');
    assert.deepEqual(
      commits[0]!.readings.map((r) => r.value),
      [1],
    );
    commits[0]!.resolve();
    await settle();
    batcher.add(reading(2));
    clock.advance(999);
    assert.equal(commits.length, 1, 'the new interval applies');
    clock.advance(1);
    assert.equal(commits.length, 2);
    commits[1]!.resolve();
    await settle();
    batcher.add(reading(3));
    batcher.add(reading(4));
    assert.equal(commits.length, 3, 'the new maxReadings applies');
    assert.throws(() => batcher.setFlush({ flushMs: 0, maxReadings: 1 }), RangeError);
  });

  it('settle() commits what waits now and keeps running; later readings are not waited for', async () => {
    batcher.add(reading(1));
    batcher.add(reading(2));
    let settled = false;
    const settling = batcher.settle().then(() => (settled = true));
    await settle();
    assert.equal(commits.length, 1);
    batcher.add(reading(3)); // arrives while settling: goes with the next flush
    commits[0]!.resolve();
    await settling;
    assert.equal(settled, true);
    assert.equal(commits.length, 1, 'reading 3 waits for its own flush');
    clock.advance(200);
    assert.equal(commits.length, 2);
    assert.deepEqual(
      commits[1]!.readings.map((r) => r.value),
      [3],
    );
    commits[1]!.resolve();
    await settle();
    assert.equal(errors.length, 0, 'still running: nothing refused');
  });

  it('batches closed behind a commit in flight keep their own first arrival: deadline and watchdog', async () => {
    const seen: { readings: Reading[]; durableBy: number; resolve(): void }[] = [];
    const b = new Batcher({
      flushMs: 200,
      maxReadings: 3,
      clock,
      commit: (readings, durableBy) =>
        new Promise<void>((resolve) => seen.push({ readings: [...readings], durableBy, resolve })),
      onError: (err) => errors.push(err),
    });
    await b.start();
    const t0 = clock.monotonic();
    for (let i = 0; i < 3; i++) b.add(reading(i)); // full: committed at once
    clock.advance(40);
    for (let i = 3; i < 6; i++) b.add(reading(i)); // full, closed behind the first
    clock.advance(40);
    b.add(reading(6)); // the batch being formed
    assert.equal(b.stats().waiting, 4);
    assert.equal(b.progress().due, t0 + 200, 'the commit in flight is the oldest');
    seen[0]!.resolve();
    await settle();
    assert.equal(seen.length, 2);
    assert.deepEqual(
      seen[1]!.readings.map((r) => r.ts),
      [3, 4, 5],
    );
    assert.equal(
      seen[1]!.durableBy,
      t0 + 40 + 400,
      "2 x flush after its own first reading, not the commit's start",
    );
    assert.equal(b.progress().due, t0 + 40 + 200);
    seen[1]!.resolve();
    await settle();
    // The reading left over was waiting before that commit started: it goes next, at once.
    assert.equal(seen.length, 3);
    assert.deepEqual(
      seen[2]!.readings.map((r) => r.ts),
      [6],
    );
    assert.equal(seen[2]!.durableBy, t0 + 80 + 400);
    assert.equal(clock.pending, 0, 'nothing waits: no flush timer');
  });

  it('arms one flush timer per batch, not one per reading', () => {
    let armed = 0;
    const counting = Object.create(clock) as FakeClock;
    counting.setTimeout = (fn: () => void, ms: number): unknown => {
      armed++;
      return clock.setTimeout(fn, ms);
    };
    const b = new Batcher({
      flushMs: 200,
      maxReadings: 1000,
      clock: counting,
      commit: () => Promise.resolve(),
      onError: (err) => errors.push(err),
    });
    return b.start().then(() => {
      for (let i = 0; i < 500; i++) b.add(reading(i));
      assert.equal(armed, 1);
    });
  });

  describe('offline (every commit synced at once)', () => {
    let offline: boolean;
    let seen: { readings: Reading[]; durableBy: number; at: number }[];

    function makeOffline(flushMs: number, maxReadings = 1000): Batcher {
      return new Batcher({
        flushMs,
        maxReadings,
        clock,
        commit: (readings, durableBy) => {
          seen.push({ readings: [...readings], durableBy, at: clock.monotonic() });
          return Promise.resolve();
        },
        onError: (err) => errors.push(err),
        offline: () => offline,
      });
    }

    beforeEach(() => {
      offline = true;
      seen = [];
    });

    it('a batch waits 2 x flush less the write margin, and is still due durable 2 x flush after its first reading', async () => {
      const b = makeOffline(200);
      await b.start();
      const t0 = clock.monotonic();
      b.add(reading(1));
      assert.equal(b.progress().due, t0 + 350, 'the watchdog expects the commit at the end of the window');
      clock.advance(200);
      b.add(reading(2));
      clock.advance(149);
      assert.equal(seen.length, 0, 'not at flush: offline the batch goes on');
      clock.advance(1);
      assert.equal(seen.length, 1);
      assert.deepEqual(
        seen[0]!.readings.map((r) => r.ts),
        [1, 2],
      );
      assert.equal(seen[0]!.at, t0 + 350);
      assert.equal(seen[0]!.durableBy, t0 + 400, 'guarantee 1 is unchanged');
      await settle();
    });

    it('keeps the window a batch started with; the next batch takes the state of its first reading', async () => {
      const b = makeOffline(200);
      await b.start();
      const t0 = clock.monotonic();
      b.add(reading(1)); // offline: 350 ms
      offline = false; // connected meanwhile
      clock.advance(350);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.at, t0 + 350);
      await settle();
      b.add(reading(2)); // online: flush
      offline = true;
      clock.advance(200);
      assert.equal(seen.length, 2);
      assert.equal(seen[1]!.at, t0 + 550);
      assert.equal(seen[1]!.durableBy, t0 + 350 + 400);
    });

    it('with readings at spread phases, makes ~43% fewer commits than online', async () => {
      // 20 sensors at 1 Hz, one reading every 50 ms, for 7 s.
      const commitsOver = async (isOffline: boolean): Promise<number> => {
        offline = isOffline;
        seen = [];
        const b = makeOffline(200);
        await b.start();
        for (let i = 0; i < 140; i++) {
          b.add(reading(i));
          clock.advance(50);
          await settle();
        }
        await b.stop();
        assert.equal(
          seen.reduce((n, c) => n + c.readings.length, 0),
          140,
          'every reading committed once',
        );
        for (const c of seen) {
          const first = c.readings[0]!.ts;
          assert.ok(
            c.at <= c.durableBy - 50 || c === seen[seen.length - 1],
            `batch from reading ${first} late`,
          );
        }
        return seen.length;
      };
      const online = await commitsOver(false);
      const off = await commitsOver(true);
      assert.equal(online, 35, '200 ms records, back to back');
      assert.ok(off <= 20, `offline commits: ${off} (online ${online})`);
    });

    it('does not lengthen a flush too short to keep the write margin', () => {
      assert.equal(batchWindow(50, true), 50);
      assert.equal(batchWindow(20, true), 20);
      assert.equal(batchWindow(100, true), 150);
      assert.equal(batchWindow(200, true), 350);
      assert.equal(batchWindow(10_000, true), 19_950);
      assert.equal(batchWindow(200, false), 200);
    });

    it('maxReadings still ends an offline batch at once', () => {
      const b = makeOffline(200, 3);
      return b.start().then(() => {
        for (let i = 0; i < 3; i++) b.add(reading(i));
        assert.equal(seen.length, 1);
        assert.equal(clock.pending, 0, 'no window timer left');
      });
    });
  });

  it('refuses nonsense options', () => {
    assert.throws(() => make(0, 10), RangeError);
    assert.throws(() => make(200, 0), RangeError);
  });
});
