import assert from 'node:assert/strict';
import { WINDOW_MS } from '../../../src/uplink/pacer.js';
import { Pacing } from '../../../src/uplink/pacing.js';
import { FakeClock } from './fake-clock.js';

const FRAME = 1000;
const q = (publishesPerSecond: number) => ({
  publishesPerSecond,
  bytesPerSecond: 100 * 1024 * 1024,
  maxPayloadBytes: FRAME,
});

/** Publishes as soon as `p` allows for `ms`; returns the send times. */
function run(p: Pacing, clock: FakeClock, ms: number): number[] {
  const sent: number[] = [];
  const end = clock.now() + ms;
  while (clock.now() < end) {
    const wait = p.waitMs(FRAME);
    if (wait > 0) clock.advance(wait);
    else {
      p.take(FRAME);
      sent.push(clock.now());
    }
  }
  return sent;
}

const inWindow = (sent: readonly number[], from: number) =>
  sent.filter((t) => t >= from && t < from + 1000).length;

describe('uplink/Pacing (limits changed by a reload)', () => {
  it('after a retune: a second that began before it stays within the old quota, one that begins after within the new', () => {
    const clock = new FakeClock();
    const p = new Pacing(q(100), FRAME, clock);
    const before = run(p, clock, 2000);
    const at = clock.now();
    p.retune(q(1000), FRAME);
    const after = run(p, clock, 3000);
    const all = [...before, ...after];
    // A fresh pacer alone would add a new second's worth on top of the sends of the last second.
    for (let t = at - 1000; t < at; t += 10) assert.ok(inWindow(all, t) <= 100, `second from ${t - at} ms`);
    for (let t = at; t < at + 2000; t += 10) assert.ok(inWindow(all, t) <= 1000, `second from +${t - at} ms`);
    assert.ok(inWindow(all, at + WINDOW_MS + 100) > 500, 'then the new, higher quota is used');
  });

  it('a lower quota applies at once', () => {
    const clock = new FakeClock();
    const p = new Pacing(q(1000), FRAME, clock);
    run(p, clock, 1500);
    const at = clock.now();
    p.retune(q(10), FRAME);
    const after = run(p, clock, 3000);
    for (let t = at; t < at + 2000; t += 10) assert.ok(inWindow(after, t) <= 10, `second from +${t - at} ms`);
  });
});
