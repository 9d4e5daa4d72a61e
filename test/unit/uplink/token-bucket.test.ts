import assert from 'node:assert/strict';
import { TokenBucket } from '../../../src/uplink/token-bucket.js';
import { FakeClock } from './fake-clock.js';

describe('TokenBucket', () => {
  it('starts full and allows a burst, then refuses', () => {
    const clock = new FakeClock();
    const b = new TokenBucket(10, 3, clock);
    assert.equal(b.take(1), true);
    assert.equal(b.take(2), true);
    assert.equal(b.take(1), false);
    assert.equal(b.waitMs(1), 100);
  });

  it('refills at the rate, never above the burst', () => {
    const clock = new FakeClock();
    const b = new TokenBucket(10, 5, clock);
    assert.ok(b.take(5));
    clock.advance(250);
    assert.equal(b.waitMs(2), 0);
    assert.equal(b.waitMs(3), 50);
    clock.advance(10_000);
    assert.equal(b.available(), 5);
    assert.ok(b.take(5));
    assert.equal(b.take(1), false);
  });

  it('lets a request larger than the burst through when full, leaving debt (long-run rate exact)', () => {
    const clock = new FakeClock();
    const b = new TokenBucket(1000, 100, clock);
    assert.equal(b.take(500), true);
    assert.equal(b.available(), -400);
    assert.equal(b.waitMs(500), 500, 'must repay 400 and refill to the burst of 100');
    assert.equal(b.take(1), false);
    clock.advance(500);
    assert.equal(b.take(500), true);
  });

  it('over a long run sends no more than rate × time + burst', () => {
    const clock = new FakeClock();
    const b = new TokenBucket(100, 3, clock);
    let sent = 0;
    for (let ms = 0; ms < 10_000; ms++) {
      while (b.take(1)) sent++;
      clock.advance(1);
    }
    assert.ok(sent <= 100 * 10 + 3, `sent ${sent}`);
    assert.ok(sent >= 100 * 10 - 1, `sent ${sent}`);
  });

  it('rejects a zero rate', () => {
    assert.throws(() => new TokenBucket(0, 1, new FakeClock()), RangeError);
  });
});
