// A hard quota over any sliding window (DESIGN.md §7: never exceed a quota in any 1 s): a log of
// (time, amount) for the last `windowMs`; an amount is allowed only if the log's sum plus it stays
// within `limit`. Unlike a token bucket, no sequence of requests can put more than `limit` in one
// window, however large each request is (one bigger than `limit` alone waits for an empty window).

import type { Clock } from '../types.js';

export class SlidingWindow {
  private at: number[] = [];
  private amounts: number[] = [];
  private head = 0;
  private total = 0;

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    private readonly clock: Pick<Clock, 'now'>,
  ) {
    if (!(limit > 0) || !(windowMs > 0))
      throw new RangeError('SlidingWindow: limit and windowMs must be > 0');
  }

  /** The sum of the amounts taken in the last `windowMs` (an entry counts while now − at < windowMs). */
  sum(): number {
    this.expire(this.clock.now());
    return this.total;
  }

  /** Milliseconds until `take(n)` keeps the window within the limit (0 when it would now). */
  waitMs(n: number): number {
    const now = this.clock.now();
    this.expire(now);
    let sum = this.total;
    for (let i = this.head; ; i++) {
      if (this.fits(sum, n)) return i === this.head ? 0 : Math.max(1, this.at[i - 1]! + this.windowMs - now);
      sum -= this.amounts[i]!;
    }
  }

  /** Records `n` now if it fits; returns whether it did. */
  take(n: number): boolean {
    const now = this.clock.now();
    this.expire(now);
    if (!this.fits(this.total, n)) return false;
    if (n > 0) {
      this.at.push(now);
      this.amounts.push(n);
      this.total += n;
    }
    return true;
  }

  private fits(sum: number, n: number): boolean {
    return n > this.limit ? sum <= 0 : sum + n <= this.limit;
  }

  private expire(now: number): void {
    const last = this.at.length - 1;
    // The clock stepped back: keep every entry for a full window from now (conservative).
    if (last >= this.head && this.at[last]! > now) {
      for (let i = this.head; i <= last; i++) this.at[i] = Math.min(this.at[i]!, now);
    }
    while (this.head <= last && now - this.at[this.head]! >= this.windowMs) {
      this.total -= this.amounts[this.head]!;
      this.head++;
    }
    if (this.head === this.at.length) {
      this.at = [];
      this.amounts = [];
      this.head = 0;
      this.total = 0;
    } else if (this.head > 1024 && this.head * 2 > this.at.length) {
      this.at = this.at.slice(this.head);
      this.amounts = this.amounts.slice(this.head);
      this.head = 0;
    }
  }
}
