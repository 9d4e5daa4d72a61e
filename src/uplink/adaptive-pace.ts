// Adaptive pacing (uplink issue): the configured limits are ceilings. IoT Core throttles silently
// under 3.1.1 and refuses with 0x97 under MQTT 5; either way a gateway that keeps sending at the
// ceiling while the broker (or the link) struggles loses time to resends and reconnects. So the pace
// is a factor of the ceilings, cut multiplicatively when
//   - a publish is refused as over quota (PUBACK 0x97),
//   - the broker drops the connection while publishes are in flight,
//   - PUBACK latency climbs well above its recent floor (a queue building up somewhere),
// and raised additively, one step per interval without such a sign, back to the ceilings (AIMD, the
// rule TCP uses for the same problem). A cut waits out a cool-down so one burst of late PUBACKs
// counts once.

import type { Clock } from '../types.js';

/** The pace never goes below this share of the ceilings. */
export const MIN_FACTOR = 0.1;
const CUT = 0.5;
const STEP = 0.1;
/** Interval between recovery steps, and the least time between two cuts. */
export const STEP_MS = 1000;
/** Latency is "well above" the floor past both of these. */
const LATENCY_RATIO = 8;
const LATENCY_MARGIN_MS = 1000;
/** The floor is the lowest PUBACK latency of the last FLOOR_BUCKETS × BUCKET_MS. */
const BUCKET_MS = 10_000;
const FLOOR_BUCKETS = 6;
/** Smoothing of the latency samples (an EWMA weight): one slow PUBACK is no trend. */
const EWMA = 0.2;

export interface PaceState {
  /** Share of the configured limits used now (1 = the ceilings). */
  factor: number;
  /** Why it is below 1 (null at the ceilings). */
  reason: string | null;
}

export class AdaptivePace {
  private f = 1;
  private why: string | null = null;
  private lastCut = -Infinity;
  private timer: unknown = null;
  private smoothed: number | null = null;
  /** Per-bucket minimum latencies, newest last, with the bucket's start. */
  private readonly buckets: { start: number; min: number }[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly onChange: (factor: number) => void,
  ) {}

  state(): PaceState {
    return { factor: Math.round(this.f * 1000) / 1000, reason: this.why };
  }

  get factor(): number {
    return this.f;
  }

  /** A PUBACK came `latencyMs` after its publish. */
  acked(latencyMs: number): void {
    const now = this.clock.monotonic();
    this.sample(now, latencyMs);
    this.smoothed = this.smoothed === null ? latencyMs : this.smoothed + EWMA * (latencyMs - this.smoothed);
    const floor = this.floor();
    const limit = Math.max(floor * LATENCY_RATIO, floor + LATENCY_MARGIN_MS);
    if (latencyMs > limit && this.smoothed > limit) {
      this.cut(`PUBACK latency ${Math.round(this.smoothed)} ms, recent floor ${Math.round(floor)} ms`);
    }
  }

  /** The broker refused a publish as over quota (MQTT 5 PUBACK 0x97). */
  refused(): void {
    this.cut('the broker refused publishes as over quota (PUBACK 0x97 or 0x96)');
  }

  /** The broker closed the connection while publishes were in flight. */
  dropped(): void {
    this.cut('the broker dropped the connection with publishes in flight');
  }

  stop(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private cut(reason: string): void {
    const now = this.clock.monotonic();
    if (now - this.lastCut < STEP_MS) return;
    this.lastCut = now;
    this.why = reason;
    this.smoothed = null; // judge the new pace by its own PUBACKs
    this.set(Math.max(MIN_FACTOR, Math.round(this.f * CUT * 1000) / 1000));
    this.arm();
  }

  private arm(): void {
    if (this.timer !== null) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      if (this.clock.monotonic() - this.lastCut < STEP_MS) {
        this.arm();
        return;
      }
      const next = Math.min(1, Math.round((this.f + STEP) * 1000) / 1000);
      if (next >= 1) this.why = null;
      this.set(next);
      if (next < 1) this.arm();
    }, STEP_MS);
  }

  private set(f: number): void {
    if (f === this.f) return;
    this.f = f;
    this.onChange(f);
  }

  private sample(now: number, ms: number): void {
    const last = this.buckets[this.buckets.length - 1];
    if (last !== undefined && now - last.start < BUCKET_MS) {
      last.min = Math.min(last.min, ms);
      return;
    }
    this.buckets.push({ start: now, min: ms });
    while (this.buckets.length > FLOOR_BUCKETS) this.buckets.shift();
  }

  private floor(): number {
    let min = Infinity;
    for (const b of this.buckets) min = Math.min(min, b.min);
    return min === Infinity ? 0 : min;
  }
}
