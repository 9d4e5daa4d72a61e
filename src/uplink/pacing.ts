// The uplink's pacer across reloads: a reload that changes the limits (or the topic, which the frame
// size counts) gets a fresh QuotaPacer, but a fresh one has forgotten what was sent in the last
// second and would add a whole second's worth on top of it. So for one window the old one is
// charged and obeyed too: a second that began before the reload stays within the old quota, one
// that begins after it within the new (the fresh pacer has seen everything sent since).

import type { Clock } from '../types.js';
import { QuotaPacer, WINDOW_MS, type Quotas } from './pacer.js';

export class Pacing {
  private pacer: QuotaPacer;
  private previous: { pacer: QuotaPacer; until: number } | null = null;
  private factor = 1;

  constructor(
    private q: Quotas,
    private frameBytes: number,
    private readonly clock: Pick<Clock, 'now'>,
  ) {
    this.pacer = new QuotaPacer(q, frameBytes, clock);
  }

  /** New ceilings (a reload). */
  retune(q: Quotas, frameBytes: number): void {
    [this.q, this.frameBytes] = [q, frameBytes];
    this.replace();
  }

  /** Paces at `factor` (0–1] of the ceilings. */
  scale(factor: number): void {
    if (factor === this.factor) return;
    this.factor = factor;
    this.replace();
  }

  /** The rates paced to now (the ceilings times the factor). */
  rates(): { publishesPerSecond: number; bytesPerSecond: number } {
    return {
      publishesPerSecond: Math.round(this.q.publishesPerSecond * this.factor * 10) / 10,
      bytesPerSecond: Math.round(this.q.bytesPerSecond * this.factor),
    };
  }

  private replace(): void {
    const q = {
      ...this.q,
      publishesPerSecond: this.q.publishesPerSecond * this.factor,
      bytesPerSecond: this.q.bytesPerSecond * this.factor,
    };
    this.previous = { pacer: this.pacer, until: this.clock.now() + WINDOW_MS };
    this.pacer = new QuotaPacer(q, this.frameBytes, this.clock);
  }

  /** Milliseconds until a frame of `bytes` may go (0: now). */
  waitMs(bytes: number): number {
    return Math.max(this.pacer.waitMs(bytes), this.old()?.waitMs(bytes) ?? 0);
  }

  /** Charges a frame of `bytes` that is being sent now. */
  take(bytes: number): void {
    this.pacer.take(bytes);
    this.old()?.take(bytes);
  }

  private old(): QuotaPacer | null {
    if (this.previous !== null && this.clock.now() >= this.previous.until) this.previous = null;
    return this.previous?.pacer ?? null;
  }
}
