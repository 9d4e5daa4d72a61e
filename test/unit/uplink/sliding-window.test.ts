import assert from 'node:assert/strict';
import { SlidingWindow } from '../../../src/uplink/sliding-window.js';
import { FakeClock } from './fake-clock.js';

/** The largest sum of `amounts` at times `at` in any window [t, t + ms). */
function worstWindow(at: readonly number[], amounts: readonly number[], ms: number): number {
  let lo = 0;
  let sum = 0;
  let worst = 0;
  for (let hi = 0; hi < at.length; hi++) {
    sum += amounts[hi]!;
    while (at[hi]! - at[lo]! >= ms) sum -= amounts[lo++]!;
    worst = Math.max(worst, sum);
  }
  return worst;
}

describe('SlidingWindow', () => {
  it('admits up to the limit, then waits exactly until enough of the window has expired', () => {
    const clock = new FakeClock();
    const w = new SlidingWindow(1000, 1000, clock);
    assert.ok(w.take(400));
    clock.advance(100);
    assert.ok(w.take(400));
    assert.equal(w.waitMs(200), 0);
    assert.equal(w.waitMs(201), 900, 'the first 400 leaves the window 1000 ms after it was taken');
    assert.equal(w.take(201), false);
    assert.equal(w.sum(), 800);
    clock.advance(899);
    assert.equal(w.waitMs(201), 1);
    clock.advance(1);
    assert.equal(w.waitMs(201), 0);
    assert.ok(w.take(201));
    assert.equal(w.sum(), 601);
    assert.equal(w.waitMs(1000), 1000, 'the whole window must empty for a request of the full limit');
  });

  it('lets a request larger than the limit through only into an empty window', () => {
    const clock = new FakeClock();
    const w = new SlidingWindow(1000, 1000, clock);
    assert.ok(w.take(10));
    assert.equal(w.take(5000), false);
    assert.equal(w.waitMs(5000), 1000);
    clock.advance(1000);
    assert.ok(w.take(5000));
    assert.equal(w.waitMs(1), 1000, 'nothing else until the big one has left the window');
  });

  it('never exceeds the limit in any window under an adversarial greedy sender', () => {
    const clock = new FakeClock();
    const limit = 524_288;
    const w = new SlidingWindow(limit, 1000, clock);
    const at: number[] = [];
    const sizes: number[] = [];
    let seed = 42;
    const rnd = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 20_000; i++) {
      // Mostly max-size messages (128 KiB), some tiny ones that try to squeeze into every gap.
      const n = rnd() < 0.6 ? 131_072 : 1 + Math.floor(rnd() * 2000);
      const wait = w.waitMs(n);
      if (wait > 0) {
        assert.equal(w.take(n), false, 'take refuses whenever waitMs is not 0');
        clock.advance(wait - (rnd() < 0.3 ? 1 : 0)); // sometimes try 1 ms too early
        if (w.waitMs(n) > 0) clock.advance(w.waitMs(n));
      }
      assert.ok(w.take(n));
      at.push(clock.now());
      sizes.push(n);
      if (rnd() < 0.1) clock.advance(Math.floor(rnd() * 50));
    }
    assert.ok(worstWindow(at, sizes, 1000) <= limit, `worst 1 s window ${worstWindow(at, sizes, 1000)}`);
    const rate = sizes.reduce((a, b) => a + b, 0) / ((at.at(-1)! - at[0]!) / 1000);
    assert.ok(rate > 0.7 * limit, `a greedy sender still gets most of the quota (${Math.round(rate)} B/s)`);
  });

  it('does not release early when the clock steps back', () => {
    const clock = new FakeClock(10_000);
    const w = new SlidingWindow(100, 1000, clock);
    assert.ok(w.take(100));
    clock.set(5_000); // an NTP step back
    assert.equal(w.take(1), false);
    assert.equal(w.waitMs(1), 1000, 'the entry counts for a full window from the new now');
    clock.advance(1000);
    assert.ok(w.take(1));
  });

  it('forgets old entries (bounded memory) and rejects a zero limit', () => {
    const clock = new FakeClock();
    const w = new SlidingWindow(10, 1000, clock);
    for (let i = 0; i < 10_000; i++) {
      assert.ok(w.take(1));
      clock.advance(100);
    }
    assert.equal(w.sum(), 9, 'the last 9 takes are within 1000 ms of now');
    assert.throws(() => new SlidingWindow(0, 1000, clock), RangeError);
  });
});
