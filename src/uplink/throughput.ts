// What the uplink sent, for `edgegw status` and the metrics: totals since start (Prometheus rates
// them itself) and the publish and byte rates over the last RATE_WINDOW_MS, shown against the
// limits. Per-second buckets on monotonic time: bounded memory, no timers, and a wall-clock step
// cannot make a rate jump.

import type { Clock, UplinkThroughput } from '../types.js';

/** Long enough to smooth the pacer's bursts, short enough to follow a drain starting or ending. */
export const RATE_WINDOW_MS = 10_000;
const BUCKET_MS = 1000;

/** Sums of amounts over a sliding window of whole buckets. */
export class RateWindow {
  private readonly buckets: number[];
  private readonly startedAt: number;
  /** Index (monotonic ms / BUCKET_MS) of the newest bucket written. */
  private newest: number;

  constructor(
    private readonly clock: Pick<Clock, 'monotonic'>,
    readonly windowMs = RATE_WINDOW_MS,
  ) {
    this.buckets = new Array<number>(Math.max(1, Math.ceil(windowMs / BUCKET_MS))).fill(0);
    this.startedAt = clock.monotonic();
    this.newest = Math.floor(this.startedAt / BUCKET_MS);
  }

  add(n: number): void {
    const i = this.advance();
    const slot = i % this.buckets.length;
    this.buckets[slot] = (this.buckets[slot] ?? 0) + n;
  }

  /** Amount per second over the window, or over the time since start while that is shorter. */
  perSecond(): number {
    this.advance();
    const sum = this.buckets.reduce((a, b) => a + b, 0);
    const span = Math.min(this.windowMs, this.clock.monotonic() - this.startedAt);
    // Under a second of history says nothing yet.
    return span < BUCKET_MS ? 0 : sum / (span / 1000);
  }

  /** Clears the buckets that fell out of the window since the last call; returns the current index. */
  private advance(): number {
    const i = Math.floor(this.clock.monotonic() / BUCKET_MS);
    const n = this.buckets.length;
    for (let k = Math.max(this.newest + 1, i - n + 1); k <= i; k++) this.buckets[k % n] = 0;
    this.newest = Math.max(this.newest, i);
    return this.newest;
  }
}

export class Throughput {
  private readonly publishes: RateWindow;
  private readonly bytes: RateWindow;
  private publishesTotal = 0;
  private bytesTotal = 0;
  private connects = 0;

  constructor(clock: Pick<Clock, 'monotonic'>, windowMs = RATE_WINDOW_MS) {
    this.publishes = new RateWindow(clock, windowMs);
    this.bytes = new RateWindow(clock, windowMs);
  }

  /** One PUBLISH of `bytes` went out. */
  sent(bytes: number): void {
    this.publishesTotal++;
    this.bytesTotal += bytes;
    this.publishes.add(1);
    this.bytes.add(bytes);
  }

  /** A CONNACK arrived. */
  connected(): void {
    this.connects++;
  }

  snapshot(): UplinkThroughput {
    return {
      publishesTotal: this.publishesTotal,
      bytesTotal: this.bytesTotal,
      reconnects: Math.max(0, this.connects - 1),
      publishesPerSecond: round1(this.publishes.perSecond()),
      bytesPerSecond: Math.round(this.bytes.perSecond()),
      windowS: this.publishes.windowMs / 1000,
    };
  }
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
