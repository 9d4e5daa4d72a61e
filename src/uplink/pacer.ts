// Paces publishes under the broker's per-connection quotas (DESIGN.md §7, §8): IoT Core drops excess
// publishes silently, so the client throttles itself first. Per quota:
// - a sliding 1 s window is the hard guarantee: whatever the message sizes, the publishes and bytes
//   sent in any 1 s stay within limit × (1 − WINDOW_MARGIN) minus one frame (and one publish),
//   kept free because the broker may count one message more in a 1 s window than we did (it
//   timestamps on receipt, after network and scheduling jitter);
// - a token bucket at the same rate spreads the publishes, so the window does not fill in one burst
//   and a live message finds room within milliseconds. Its burst is several frames (~150 ms of the
//   quota), so a timer that fires late or a pause of the sender (a garbage collection, a slow read)
//   does not cost throughput for good: what the window still has room for goes when it ends (the
//   window still caps every second). With a burst of 2 frames a drain lost ~1-3% of the quota to
//   such pauses (bench section 4).

import type { Clock } from '../types.js';
import { SlidingWindow } from './sliding-window.js';
import { TokenBucket } from './token-bucket.js';

/** The windows stay this far under the quotas, besides the frame kept free for jitter. */
export const WINDOW_MARGIN = 0.005;
/**
 * The window the limits apply to: 1 s plus a guard. Paced at the limit, each message would go
 * exactly 1 s after the one it replaces in the window, so the smallest delay of the earlier one on
 * its way to the broker would put both in one broker second; the guard absorbs such delays.
 */
export const WINDOW_MS = 1010;
/** Frames the byte bucket may save up (at most a quarter of the window, see the constructor). */
const BURST_FRAMES = 8;

export interface Quotas {
  publishesPerSecond: number;
  bytesPerSecond: number;
  maxPayloadBytes: number;
}

/**
 * The payload size the packer aims at: small enough that whole messages fill the byte window to
 * within ~2% (a window holds ⌊limit ÷ size⌋ messages), large enough to need at most two thirds of
 * the publish quota (and never below 4 KiB, nor above maxPayloadBytes), aligned to billing steps.
 */
export function messageBytes(q: Quotas): number {
  const fill = Math.floor(q.bytesPerSecond / 64);
  const pubs = Math.ceil((1.5 * q.bytesPerSecond) / q.publishesPerSecond);
  return Math.max(1, Math.min(q.maxPayloadBytes, billingAligned(Math.max(4096, fill, pubs))));
}

/**
 * IoT Core meters messages in 5 KB steps (an 8 KB message costs two), so the paced size is raised
 * to just under a whole number of steps: 5,000-byte steps (the stricter reading of "KB") less an
 * allowance for the topic and header.
 */
export const BILLING_STEP_BYTES = 5000;
const BILLING_ALLOWANCE_BYTES = 256;

export function billingAligned(size: number): number {
  const steps = Math.max(1, Math.ceil((size + BILLING_ALLOWANCE_BYTES) / BILLING_STEP_BYTES));
  return steps * BILLING_STEP_BYTES - BILLING_ALLOWANCE_BYTES;
}

/** The sliding-window limits: under the quota by the margin and by one frame (one publish). */
export function windowLimits(q: Quotas, frameBytes: number): { publishes: number; bytes: number } {
  const pps = q.publishesPerSecond * (1 - WINDOW_MARGIN);
  const bps = q.bytesPerSecond * (1 - WINDOW_MARGIN);
  return {
    publishes: Math.max(1, Math.floor(Math.max(pps - 1, pps / 2))),
    bytes: Math.max(1, Math.floor(Math.max(bps - frameBytes, bps / 2))),
  };
}

export class QuotaPacer {
  private readonly pubsWindow: SlidingWindow;
  private readonly bytesWindow: SlidingWindow;
  private readonly pubsBucket: TokenBucket;
  private readonly bytesBucket: TokenBucket;

  /** `frameBytes`: the largest frame the packer normally makes (payload cap + topic + header). */
  constructor(q: Quotas, frameBytes: number, clock: Pick<Clock, 'now'>) {
    const limits = windowLimits(q, frameBytes);
    this.pubsWindow = new SlidingWindow(limits.publishes, WINDOW_MS, clock);
    this.bytesWindow = new SlidingWindow(limits.bytes, WINDOW_MS, clock);
    this.pubsBucket = new TokenBucket(
      limits.publishes,
      Math.max(1, Math.floor(limits.publishes / 20)),
      clock,
    );
    this.bytesBucket = new TokenBucket(
      limits.bytes,
      Math.min(BURST_FRAMES * frameBytes, limits.bytes / 4),
      clock,
    );
  }

  /** Milliseconds until a frame of `bytes` may go (0: now). */
  waitMs(bytes: number): number {
    return Math.max(
      this.pubsWindow.waitMs(1),
      this.bytesWindow.waitMs(bytes),
      this.pubsBucket.waitMs(1),
      this.bytesBucket.waitMs(bytes),
    );
  }

  /** Charges a frame of `bytes` that is being sent now (call only when waitMs returned 0). */
  take(bytes: number): void {
    this.pubsWindow.take(1);
    this.bytesWindow.take(bytes);
    this.pubsBucket.take(1);
    this.bytesBucket.take(bytes);
  }

  /** Bytes counted in the current 1 s window. */
  windowBytes(): number {
    return this.bytesWindow.sum();
  }
}
