// The watchdog's judge (src/status/progress.ts) against the real stages on a fake clock: each cause
// of a stall is found and named, and what is no stall (idle, a broker outage, a failing commit, a
// late but live grid) keeps the pings going.

import assert from 'node:assert/strict';
import net from 'node:net';
import { FakeClock, settle } from '../../helpers/fake-clock.js';
import { Batcher } from '../../../src/queue/batcher.js';
import { FixedGrid } from '../../../src/sensors/schedule.js';
import { ProgressMonitor, type ProgressProbe } from '../../../src/status/progress.js';
import type { Reading } from '../../../src/types.js';
import { createDemoPki } from '../../../src/demo/pki.js';
import { makeUplink } from '../../integration/uplink-support.js';
import { MemorySource } from '../uplink/memory-source.js';

const EVERY = 1000; // the ping interval the checks are asked at
const r: Reading = { sensor: 's1', ts: 0, value: 1, quality: 'good' };

function monitor(clock: FakeClock, probes: ProgressProbe[]): ProgressMonitor {
  return new ProgressMonitor({ clock, probes: () => probes });
}

/** Checks at every ping interval for `ms`, as SdNotify does; returns each verdict's reason. */
function pings(clock: FakeClock, m: ProgressMonitor, ms: number): (string | null)[] {
  const out: (string | null)[] = [];
  for (let t = 0; t < ms; t += EVERY) {
    clock.advance(EVERY);
    out.push(m.check(EVERY).reason);
  }
  return out;
}

describe('ProgressMonitor', () => {
  it('is healthy with nothing due (idle stages) and while checks run on time', () => {
    const clock = new FakeClock();
    const m = monitor(clock, [{ name: 'idle', progress: () => ({ due: null, what: 'nothing' }) }]);
    assert.deepEqual(pings(clock, m, 10_000), Array(10).fill(null));
  });

  it('finds a blocked event loop: a check that runs much later than asked', () => {
    const clock = new FakeClock();
    const m = monitor(clock, []);
    assert.equal(m.check(EVERY).healthy, true);
    clock.stall(EVERY + 400); // late by less than half an interval: scheduling noise
    assert.equal(m.check(EVERY).healthy, true);
    clock.stall(EVERY + 4000);
    const h = m.check(EVERY);
    assert.equal(h.healthy, false);
    assert.match(h.reason ?? '', /^event loop blocked for 4\.0 s$/);
    clock.stall(EVERY);
    assert.equal(m.check(EVERY).healthy, true, 'on time again: healthy again');
  });

  it('finds a commit that never settles, and not one that fails', async () => {
    const clock = new FakeClock();
    const commits: { resolve: () => void; reject: (e: Error) => void }[] = [];
    const batcher = new Batcher({
      flushMs: 200,
      maxReadings: 1000,
      clock,
      commit: () => new Promise<void>((resolve, reject) => commits.push({ resolve, reject })),
      onError: () => undefined,
    });
    await batcher.start();
    const m = monitor(clock, [{ name: 'batcher', progress: () => batcher.progress() }]);
    assert.equal(batcher.progress().due, null, 'nothing waiting: nothing due');
    batcher.add(r);
    assert.equal(batcher.progress().due, clock.monotonic() + 200);
    // The commit starts at 200 ms and hangs (a filesystem that blocks): healthy within the tolerance.
    assert.deepEqual(pings(clock, m, 1000), [null]);
    assert.equal(commits.length, 1);
    const reasons = pings(clock, m, 2000);
    assert.match(reasons[0] ?? '', /^batcher: commit overdue by 1\.8 s$/);
    assert.match(reasons[1] ?? '', /^batcher: commit overdue by 2\.8 s$/);

    // It settles by failing (a full disk): that is progress, and so is the next commit.
    commits[0]!.reject(new Error('ENOSPC'));
    await settle();
    assert.equal(batcher.progress().due, null);
    assert.equal(m.check(EVERY).healthy, true);
    batcher.add(r);
    clock.advance(200);
    commits[1]!.resolve();
    await settle();
    assert.deepEqual(pings(clock, m, 5000), Array(5).fill(null));
    assert.deepEqual(batcher.stats().committedReadings, 1);
  });

  it('finds a grid that stopped firing; a late tick within maxTickMs and skipped slots are no stall', async () => {
    const clock = new FakeClock();
    let hang: Promise<void> | null = null;
    let skipped = 0;
    const grid = new FixedGrid({
      clock,
      period: 500,
      maxTickMs: 2000,
      tick: () => hang ?? undefined,
      onSkip: (n) => (skipped += n),
    });
    const m = monitor(clock, [{ name: 'sensors s1', progress: () => grid.progress() }]);
    grid.start();
    assert.deepEqual(pings(clock, m, 5000), Array(5).fill(null));

    // A tick that takes 2.5 s (a poll of a dead bus): late, skips slots, still no stall.
    let finish!: () => void;
    hang = new Promise<void>((resolve) => (finish = resolve));
    clock.advance(500);
    hang = null;
    assert.deepEqual(pings(clock, m, 2000), [null, null]);
    finish();
    await settle();
    assert.deepEqual(pings(clock, m, 3000), [null, null, null]);
    assert.ok(skipped > 0, 'slots were skipped, not piled up');

    // A tick that never settles: the grid stops firing; overdue after maxTickMs + tolerance.
    hang = new Promise<void>(() => undefined);
    clock.advance(500);
    const reasons = pings(clock, m, 5000);
    assert.equal(reasons[0], null);
    assert.match(reasons.at(-1) ?? '', /^sensors s1: tick every 500 ms overdue by \d+\.\d s$/);
    const stopped = grid.stop();
    // stop() waits for the hung tick; a stopped grid owes nothing.
    assert.equal(grid.progress().due, null);
    void stopped;
  });

  describe('the uplink', function () {
    this.timeout(20_000);
    const pki = createDemoPki('test-gw1');

    it('is alive through a broker outage: attempts fail, backoff timers fire, no stall', async () => {
      const closed = net.createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const port = (closed.address() as net.AddressInfo).port;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      const clock = new FakeClock();
      const uplink = makeUplink({ url: `mqtts://127.0.0.1:${port}` }, pki, new MemorySource(), {
        clock,
        backoff: { minMs: 1000, maxMs: 4000 },
      });
      const m = monitor(clock, [{ name: 'uplink', progress: () => uplink.progress() }]);
      await uplink.start();
      try {
        for (let attempt = 0; attempt < 4; attempt++) {
          await waitReal(() => uplink.state().state === 'backoff');
          const due = uplink.progress().due!;
          assert.ok(due >= clock.monotonic(), 'the reconnect timer is due, not overdue');
          // Checks at every interval until the timer has fired: a new attempt, healthy throughout.
          const span = Math.ceil((due - clock.monotonic() + 1) / EVERY) * EVERY;
          assert.deepEqual(pings(clock, m, span), Array(span / EVERY).fill(null));
          assert.equal(uplink.state().state, 'connecting');
        }
      } finally {
        await uplink.stop(0);
      }
      assert.equal(uplink.progress().due, null, 'stopped: nothing due');
    });

    it('finds a state machine that stopped moving: connecting past the connect timeout', async () => {
      // A server that accepts and never says a word: only the connect timeout moves the uplink on.
      const sockets: net.Socket[] = [];
      const silent = net.createServer((s) => sockets.push(s));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const port = (silent.address() as net.AddressInfo).port;
      const clock = new FakeClock();
      const uplink = makeUplink({ url: `mqtts://127.0.0.1:${port}` }, pki, new MemorySource(), { clock });
      const m = monitor(clock, [{ name: 'uplink', progress: () => uplink.progress() }]);
      await uplink.start();
      try {
        assert.equal(uplink.state().state, 'connecting');
        assert.deepEqual(pings(clock, m, 10_000), Array(10).fill(null));
        const reasons = pings(clock, m, 3000);
        assert.match(reasons.at(-1) ?? '', /^uplink: CONNACK or connect timeout overdue by 3\.0 s$/);
      } finally {
        await uplink.stop(0);
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => silent.close(() => resolve()));
      }
    });
  });

  it('names every overdue stage at once', () => {
    const clock = new FakeClock();
    const at = clock.monotonic();
    const m = monitor(clock, [
      { name: 'a', progress: () => ({ due: at, what: 'x' }) },
      {
        name: 'b',
        progress: () => [
          { due: null, what: 'y' },
          { due: at + 500, what: 'z' },
        ],
      },
    ]);
    clock.advance(3000);
    assert.equal(m.check(EVERY).reason, 'a: x overdue by 3.0 s; b: z overdue by 2.5 s');
  });
});

async function waitReal(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
