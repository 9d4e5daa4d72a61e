import assert from 'node:assert/strict';
import { Backoff } from '../../../src/uplink/backoff.js';

describe('Backoff', () => {
  it('doubles the window up to max, with the top of the window at random → 1', () => {
    const b = new Backoff({ minMs: 100, maxMs: 1000, random: () => 0.999999 });
    assert.deepEqual(
      Array.from({ length: 6 }, () => b.next()),
      [100, 200, 400, 800, 1000, 1000],
    );
  });

  it('never goes below min (random → 0) and reset starts over', () => {
    const b = new Backoff({ minMs: 100, maxMs: 1000, random: () => 0 });
    assert.deepEqual([b.next(), b.next(), b.next()], [100, 100, 100]);
    const r = [0.5, 0.5, 0.5, 0.5];
    const c = new Backoff({ minMs: 100, maxMs: 10_000, random: () => r.shift() ?? 0 });
    assert.deepEqual([c.next(), c.next(), c.next()], [100, 150, 250]);
    c.reset();
    assert.equal(c.attempts, 0);
    assert.equal(c.next(), 100);
  });

  it('retune() (a reload) takes the new range from the next delay and keeps the attempt count', () => {
    const b = new Backoff({ minMs: 100, maxMs: 1000, random: () => 0.999999 });
    assert.deepEqual([b.next(), b.next()], [100, 200]);
    b.retune({ minMs: 50, maxMs: 300 });
    assert.equal(b.attempts, 2);
    assert.deepEqual([b.next(), b.next()], [200, 300], 'a long outage stays long, capped by the new max');
    assert.throws(() => b.retune({ minMs: 500, maxMs: 100 }), RangeError);
  });

  it('spreads delays (full jitter) within [min, cap]', () => {
    const b = new Backoff({ minMs: 1000, maxMs: 120_000 });
    for (let i = 0; i < 20; i++) b.next();
    const seen = Array.from({ length: 200 }, () => b.next());
    assert.ok(seen.every((d) => d >= 1000 && d <= 120_000));
    assert.ok(new Set(seen).size > 100, 'delays are jittered, not identical');
  });

  it('rejects min > max', () => {
    assert.throws(() => new Backoff({ minMs: 10, maxMs: 5 }), RangeError);
  });
});
