// The publishes awaiting their PUBACK (DESIGN.md §1, §2.2): the window the pump fills, capped by
// uplink.limits.inflight and, under MQTT 5, by the broker's Receive Maximum (mqtt.js ignores it,
// DESIGN.md §8), with the ack watch that reports a PUBACK that never came, and the wait a clean stop
// makes for the last PUBACKs.

import type { Clock } from '../types.js';
import { AckWatch } from './ack-watch.js';
import type { PackedMessage } from './wire.js';

export interface InFlight {
  msg: PackedMessage;
  /** Monotonic send time (the watchdog's PUBACK deadline and the pace's latency sample). */
  sentAt: number;
}

export class InFlightTable {
  /** A Set keeps send order: the first entry is the oldest. */
  private readonly entries = new Set<InFlight>();
  private readonly watch: AckWatch<InFlight>;
  private drained: (() => void) | null = null;
  /** The broker's Receive Maximum (MQTT 5 CONNACK); Infinity when it set none. */
  receiveMaximum = Infinity;

  constructor(
    private readonly clock: Clock,
    ackTimeoutMs: number,
    onStall: (oldest: InFlight) => void,
  ) {
    this.watch = new AckWatch(clock, ackTimeoutMs, onStall);
  }

  get size(): number {
    return this.entries.size;
  }

  get ackTimeoutMs(): number {
    return this.watch.timeoutMs;
  }

  set ackTimeoutMs(ms: number) {
    this.watch.timeoutMs = ms;
  }

  /** Whether another publish would exceed the window (`limit`, or the broker's smaller one). */
  full(limit: number): boolean {
    return this.entries.size >= Math.min(limit, this.receiveMaximum);
  }

  add(msg: PackedMessage): InFlight {
    const entry: InFlight = { msg, sentAt: this.clock.monotonic() };
    this.entries.add(entry);
    this.watch.sent(entry);
    return entry;
  }

  has(entry: InFlight): boolean {
    return this.entries.has(entry);
  }

  /** The entry's PUBACK came (or it was refused and goes back to be sent again). */
  settle(entry: InFlight): void {
    this.entries.delete(entry);
    this.watch.acked(entry);
    if (this.entries.size === 0) this.drained?.();
  }

  oldest(): InFlight | undefined {
    for (const e of this.entries) return e;
    return undefined;
  }

  /** The lowest seq in flight (Infinity when none). */
  lowestSeq(): number {
    let low = Infinity;
    for (const e of this.entries) low = Math.min(low, e.msg.seqs[0] ?? Infinity);
    return low;
  }

  /** A disconnect: everything in flight counts as unsent (the source still holds it). */
  clear(): void {
    this.entries.clear();
    this.watch.clear();
    this.drained?.();
  }

  /** Resolves when nothing is in flight, or after `ms`. */
  waitDrained(ms: number): Promise<void> {
    if (this.entries.size === 0 || ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = this.clock.setTimeout(() => finish(), ms);
      const finish = (): void => {
        this.clock.clearTimeout(timer);
        this.drained = null;
        resolve();
      };
      this.drained = finish;
    });
  }
}
