// When to trust a connection again (DESIGN.md §2.4). Resetting the reconnect backoff at CONNACK
// turns any connection the broker closes right away into a reconnect loop: two gateways with the
// same client id (a cloned SD card) take each other over about once a second for ever. So the
// backoff restarts only once a connection stayed up `stableMs`; until then every close widens it.
// Several such short-lived connections in a row, closed by the broker, are reported as a likely
// takeover (IoT Core closes the older connection when a client id connects twice).

import type { Clock } from '../types.js';
import type { Backoff } from './backoff.js';

/** Short-lived connections in a row after which a takeover is reported. */
export const TAKEOVER_AFTER = 3;
/** A connection is stable after one keep-alive interval (a PINGRESP came back), and never sooner than this. */
export const MIN_STABLE_MS = 30_000;

export interface Closed {
  /** Reconnect delay. */
  delayMs: number;
  /** Connections in a row the broker closed before they became stable. */
  shortLived: number;
  /** shortLived reached TAKEOVER_AFTER. */
  takeover: boolean;
}

export class LinkHealth {
  private stableTimer: unknown = null;
  private up = false;
  private shortLived = 0;

  constructor(
    private readonly clock: Clock,
    private readonly backoff: Backoff,
    readonly stableMs: number,
  ) {}

  /** CONNACK: the backoff and the takeover count restart only if this connection lasts. */
  connected(): void {
    this.cancel();
    this.up = true;
    this.stableTimer = this.clock.setTimeout(() => {
      this.stableTimer = null;
      this.backoff.reset();
      this.shortLived = 0;
    }, this.stableMs);
  }

  /**
   * The connection (or the attempt) ended. `byBroker`: it had a CONNACK and we did not end it
   * ourselves (a stall, a failed publish or stop are ours).
   */
  closed(byBroker: boolean): Closed {
    // Unstable: it had a CONNACK and the stable timer has not fired yet (a stable one reset the count).
    const unstable = this.up && this.stableTimer !== null;
    this.cancel();
    this.up = false;
    // A failed attempt leaves the count alone; a close of our own is no sign of a takeover.
    if (unstable) this.shortLived = byBroker ? this.shortLived + 1 : 0;
    return {
      delayMs: this.backoff.next(),
      shortLived: this.shortLived,
      takeover: this.shortLived >= TAKEOVER_AFTER,
    };
  }

  cancel(): void {
    if (this.stableTimer !== null) this.clock.clearTimeout(this.stableTimer);
    this.stableTimer = null;
  }
}
