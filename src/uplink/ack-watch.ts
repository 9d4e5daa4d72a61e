// The acknowledgement timeout (DESIGN.md §2.2). On MQTT 3.1.1 a client resends an unacknowledged
// QoS 1 publish only when it reconnects, never on a live connection; a PUBACK the broker (or a
// middlebox) lost therefore holds a slot of the in-flight window for good, and after `inflight` such
// losses publishing stops while the connection looks healthy. This watch reports the publish that
// waited too long, so the uplink can reconnect and resend from the lowest unacknowledged seq.
//
// Age is counted in timer ticks, not wall time: Node's timers run on the monotonic clock, so an NTP
// step neither fires a false stall nor hides a real one. A publish counts as stalled once
// TICKS_PER_TIMEOUT + 1 ticks have passed since it was sent: between 1 and 1.25 timeouts.

import type { Clock } from '../types.js';

const TICKS_PER_TIMEOUT = 4;

export class AckWatch<T> {
  /** Publishes in flight with the tick they were sent in; a Map keeps them oldest first. */
  private readonly sentAt = new Map<T, number>();
  private tick = 0;
  private timer: unknown = null;

  constructor(
    private readonly clock: Clock,
    private timeout: number,
    private readonly onStall: (oldest: T) => void,
  ) {
    if (!(timeout > 0)) throw new RangeError('AckWatch: timeoutMs must be > 0');
  }

  get timeoutMs(): number {
    return this.timeout;
  }

  /** A reload: publishes already in flight are judged by the new timeout from the next tick. */
  set timeoutMs(ms: number) {
    if (!(ms > 0)) throw new RangeError('AckWatch: timeoutMs must be > 0');
    this.timeout = ms;
  }

  sent(entry: T): void {
    this.sentAt.set(entry, this.tick);
    this.arm();
  }

  acked(entry: T): void {
    this.sentAt.delete(entry);
  }

  /** Forget everything (a disconnect: the publishes are resent on the next connection). */
  clear(): void {
    this.sentAt.clear();
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(): void {
    if (this.timer !== null || this.sentAt.size === 0) return;
    this.timer = this.clock.setTimeout(() => this.onTick(), Math.max(1, this.timeoutMs / TICKS_PER_TIMEOUT));
  }

  private onTick(): void {
    this.timer = null;
    this.tick++;
    for (const [entry, at] of this.sentAt) {
      // Only the oldest matters: the others were sent later.
      if (this.tick - at > TICKS_PER_TIMEOUT) {
        this.onStall(entry);
        return;
      }
      break;
    }
    this.arm();
  }
}
