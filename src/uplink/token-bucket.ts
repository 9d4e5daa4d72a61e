// Paces publishes below the broker's quotas (IoT Core drops excess publishes silently, so the
// client must throttle itself first). Tokens refill continuously at `rate` per second up to
// `burst`. A request larger than `burst` (a message bigger than the byte burst) is allowed once
// the bucket is full and leaves it in debt, so the long-run rate stays exact.

import type { Clock } from '../types.js';

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    private readonly clock: Pick<Clock, 'now'>,
  ) {
    if (!(rate > 0) || !(burst > 0)) throw new RangeError('TokenBucket: rate and burst must be > 0');
    this.tokens = burst;
    this.last = clock.now();
  }

  /** Takes `n` tokens if available now; returns whether it did. */
  take(n: number): boolean {
    this.refill();
    if (this.tokens < Math.min(n, this.burst)) return false;
    this.tokens -= n;
    return true;
  }

  /** Milliseconds until `take(n)` would succeed (0 when it would now). */
  waitMs(n: number): number {
    this.refill();
    const missing = Math.min(n, this.burst) - this.tokens;
    return missing <= 0 ? 0 : Math.ceil((missing * 1000) / this.rate);
  }

  /** Tokens available now (may be negative while in debt). */
  available(): number {
    this.refill();
    return this.tokens;
  }

  private refill(): void {
    const now = this.clock.now();
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
    }
    this.last = now;
  }
}
