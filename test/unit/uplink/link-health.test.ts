// When the reconnect backoff restarts and when a takeover is reported, on the fake clock.

import assert from 'node:assert/strict';
import { Backoff } from '../../../src/uplink/backoff.js';
import { AckWatch } from '../../../src/uplink/ack-watch.js';
import { LinkHealth, TAKEOVER_AFTER } from '../../../src/uplink/link-health.js';
import { FakeClock } from './fake-clock.js';

/** random() = 1 − ε: every delay is the top of its window, so growth is visible. */
const top = () => 0.999999;

describe('LinkHealth (backoff reset and takeover)', () => {
  it('a connection the broker closes right after CONNACK does not reset the backoff', () => {
    const clock = new FakeClock();
    const health = new LinkHealth(clock, new Backoff({ minMs: 100, maxMs: 10_000, random: top }), 30_000);
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      health.connected();
      clock.advance(500); // taken over half a second later
      delays.push(health.closed(true).delayMs);
      clock.advance(delays[i]!);
    }
    assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200]);
  });

  it('a connection that stayed up stableMs resets the backoff and the takeover count', () => {
    const clock = new FakeClock();
    const health = new LinkHealth(clock, new Backoff({ minMs: 100, maxMs: 10_000, random: top }), 30_000);
    for (let i = 0; i < 4; i++) {
      health.connected();
      clock.advance(100);
      health.closed(true);
    }
    health.connected();
    clock.advance(30_000);
    const closed = health.closed(true);
    assert.equal(closed.delayMs, 100, 'the smallest window again');
    assert.equal(closed.shortLived, 0);
    assert.equal(closed.takeover, false);
  });

  it(`reports a takeover after ${TAKEOVER_AFTER} short-lived connections in a row, not for closes of our own`, () => {
    const clock = new FakeClock();
    const health = new LinkHealth(clock, new Backoff({ minMs: 100, maxMs: 10_000, random: top }), 30_000);
    const cycle = (byBroker: boolean) => {
      health.connected();
      clock.advance(1000);
      return health.closed(byBroker);
    };
    assert.equal(cycle(true).takeover, false);
    assert.equal(cycle(true).takeover, false);
    assert.equal(cycle(false).shortLived, 0, 'a stall or failed publish of ours breaks the row');
    assert.equal(health.closed(false).shortLived, 0, 'a failed connect attempt leaves it alone');
    for (let i = 1; i < TAKEOVER_AFTER; i++) assert.equal(cycle(true).takeover, false);
    const t = cycle(true);
    assert.equal(t.takeover, true);
    assert.equal(t.shortLived, TAKEOVER_AFTER);
  });
});

describe('AckWatch (acknowledgement timeout)', () => {
  it('reports the oldest publish once it waited between 1 and 1.25 timeouts', () => {
    const clock = new FakeClock();
    const stalls: { seq: number; at: number }[] = [];
    const watch = new AckWatch<{ seq: number }>(clock, 1000, (e) =>
      stalls.push({ seq: e.seq, at: clock.now() }),
    );
    const t0 = clock.now();
    const a = { seq: 1 };
    const b = { seq: 2 };
    watch.sent(a);
    clock.advance(100);
    watch.sent(b);
    clock.advance(400);
    watch.acked(a);
    clock.advance(599); // b waited 999 ms
    assert.equal(stalls.length, 0, 'b waited under a timeout');
    clock.advance(251); // b waited 1250 ms
    assert.equal(stalls.length, 1);
    const [stall] = stalls;
    assert.equal(stall?.seq, 2);
    const waited = (stall?.at ?? 0) - (t0 + 100);
    assert.ok(waited >= 1000 && waited <= 1250, `stalled after ${waited} ms`);
  });

  it('never reports publishes that are acknowledged in time, and stops ticking when idle', () => {
    const clock = new FakeClock();
    let stalls = 0;
    const watch = new AckWatch<number>(clock, 1000, () => stalls++);
    for (let i = 0; i < 50; i++) {
      watch.sent(i);
      clock.advance(900);
      watch.acked(i);
    }
    clock.advance(5000);
    assert.equal(stalls, 0);
    assert.equal(clock.pending, 0, 'no timer left once nothing is in flight');
  });

  it('is not fooled by a wall-clock step (ages are counted in timer ticks)', () => {
    const clock = new FakeClock();
    let stalls = 0;
    const watch = new AckWatch<number>(clock, 1000, () => stalls++);
    watch.sent(1);
    clock.set(clock.now() + 3_600_000); // NTP steps forward an hour; no timer fired
    clock.advance(500);
    assert.equal(stalls, 0);
    clock.advance(800);
    assert.equal(stalls, 1);
    watch.clear();
    assert.equal(clock.pending, 0);
  });
});
