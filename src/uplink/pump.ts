// The uplink's pump (DESIGN.md §1, §7): publishes what the in-flight window and the pacer allow,
// live messages first (feed.ts), pulling records from the source only when there is room, so a
// backlog stays on disk. A PUBACK deletes the records; a publish the broker refused as over quota
// (MQTT 5 reason 0x97 quota exceeded or 0x96 message rate too high: it discarded it) is kept and sent again, first, at the slower pace the refusal
// caused (adaptive-pace.ts); any other failed publish ends the connection, and the next one resends
// from the lowest unacknowledged seq.

import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Clock, RecordSource } from '../types.js';
import type { AdaptivePace } from './adaptive-pace.js';
import { classifyError, describePuback } from './errors.js';
import type { Feed, NextMessage } from './feed.js';
import type { InFlight, InFlightTable } from './inflight.js';
import type { UplinkLimits } from './options.js';
import type { Pacing } from './pacing.js';
import type { Session } from './session.js';
import type { Throughput } from './throughput.js';
import type { PackedMessage } from './wire.js';

/** MQTT fixed header, remaining length, topic length and packet id, as charged by the pacer. */
export const PUBLISH_OVERHEAD = 9;
/** MQTT 5 adds a properties length, the content type and the payload format indicator. */
export const PUBLISH_OVERHEAD_V5 = 9 + 1 + 3 + 16 + 2;

/** The bytes the pacer charges one PUBLISH of `payloadBytes` on `topic`. */
export function frameBytes(payloadBytes: number, topic: string, v5: boolean): number {
  return payloadBytes + Buffer.byteLength(topic) + (v5 ? PUBLISH_OVERHEAD_V5 : PUBLISH_OVERHEAD);
}

/**
 * Backlog messages packed ahead while the pacer holds the next one. With two, a compressed drain
 * (each message ~600 records to read, open and deflate) lost 3-5% of the byte quota more than with
 * six on a machine with another process busy (probe runs, section 4's drain): after a pause the
 * bucket allows several frames at once, but only the packed ones could use it. Memory: a few
 * messages of at most the paced size, and their records until acknowledged.
 */
export const PACKED_AHEAD = 6;

export interface PumpParts {
  clock: Clock;
  log: Logger;
  source: RecordSource;
  session: Session;
  feed: Feed;
  pacer: Pacing;
  inflight: InFlightTable;
  sent: Throughput;
  pace: AdaptivePace;
}

export interface PumpSettings {
  topic: string;
  limits: UplinkLimits;
  /** MQTT 5: publishes carry content type and the payload format indicator. */
  v5: boolean;
  onDelivered?: (seqs: number[], readings: number) => void;
  onMessage?: () => void;
}

export class Pump {
  private running = false;
  private pumping = false;
  private again = false;
  private done: Promise<void> = Promise.resolve();
  private paceTimer: unknown = null;
  private paceDue = 0;
  /** Monotonic start of the pump's current round (the watchdog's record-pull deadline). */
  private since = 0;
  /** Messages the broker refused as over quota, to send again before anything else. */
  private readonly retry: PackedMessage[] = [];
  private readonly acking = new Set<Promise<void>>();
  private refusals = 0;

  constructor(
    private readonly parts: PumpParts,
    private settings: PumpSettings,
  ) {}

  get pumpingSince(): number | null {
    return this.pumping ? this.since : null;
  }

  /** Publishes the broker refused as over quota since start. */
  get refused(): number {
    return this.refusals;
  }

  update(settings: PumpSettings): void {
    this.settings = settings;
  }

  start(): void {
    this.running = true;
  }

  /** Stops pumping (what is in flight stays so; the caller waits for it). */
  async halt(): Promise<void> {
    this.running = false;
    this.clearPace();
    await this.done;
  }

  /** Waits for the acks being written to the source. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.acking]);
  }

  /** The pump's current round, awaited (a clean stop sends the tail, then waits for it). */
  get round(): Promise<void> {
    return this.done;
  }

  /** The lowest seq not known to be acknowledged among what the pump holds (Infinity: none). */
  lowestHeld(): number {
    return Math.min(this.parts.inflight.lowestSeq(), this.retry[0]?.seqs[0] ?? Infinity);
  }

  /** A disconnect: nothing held is sent on the next connection but by pulling it again. */
  reset(): void {
    this.retry.length = 0;
    this.clearPace();
  }

  wake(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    this.done = this.loop()
      .catch((err: unknown) => {
        this.parts.log.error({ err: err instanceof Error ? err.message : String(err) }, 'uplink pull failed');
      })
      .finally(() => {
        this.pumping = false;
      });
  }

  private async loop(): Promise<void> {
    const { session } = this.parts;
    do {
      this.again = false;
      await this.fill();
    } while (this.again && this.running && session.connected);
  }

  private next(): NextMessage | null {
    const first = this.retry[0];
    if (first !== undefined) return { msg: first, live: false };
    return this.parts.feed.peek();
  }

  /** Publishes what the window and the pacer allow, live messages first, pulling only when there is room. */
  private async fill(): Promise<void> {
    const { session, feed, inflight, pacer, sent, clock } = this.parts;
    const id = session.id;
    for (;;) {
      this.since = clock.monotonic(); // each round (a pull, then publishes) is progress
      if (!this.running || !session.connected || id !== session.id) return;
      if (this.retry.length === 0 && feed.liveWaiting) {
        await feed.pull(0); // live records first: pack them before sending what is ready
        continue;
      }
      // How many backlog messages may wait packed: one, or PACKED_AHEAD while the pacer holds the
      // first (packed meanwhile, so what the byte bucket saved up during a pause of this process can
      // go at once, not only as fast as packing catches up); none while the window is full.
      let ahead = 1;
      for (let next = this.next(); next !== null; next = this.next()) {
        if (inflight.full(this.settings.limits.inflight)) {
          ahead = 0; // a PUBACK wakes us
          break;
        }
        const cost = frameBytes(next.msg.payload.length, this.settings.topic, this.settings.v5);
        const wait = pacer.waitMs(cost);
        if (wait > 0) {
          this.paceIn(wait);
          ahead = PACKED_AHEAD;
          break;
        }
        pacer.take(cost);
        sent.sent(cost);
        if (this.retry[0] === next.msg) this.retry.shift();
        else feed.shift(next.live);
        this.publish(next.msg, id);
      }
      if (!(await feed.pull(ahead))) return;
    }
  }

  /** Wakes the pump in `ms`; an earlier wake replaces a later one (a small live message may fit sooner). */
  private paceIn(ms: number): void {
    const { clock } = this.parts;
    const due = clock.now() + ms;
    if (this.paceTimer !== null) {
      if (this.paceDue <= due) return;
      clock.clearTimeout(this.paceTimer);
    }
    this.paceDue = due;
    this.paceTimer = clock.setTimeout(() => {
      this.paceTimer = null;
      this.wake();
    }, ms);
  }

  private clearPace(): void {
    if (this.paceTimer !== null) this.parts.clock.clearTimeout(this.paceTimer);
    this.paceTimer = null;
  }

  private publish(msg: PackedMessage, id: number): void {
    const { session, inflight, log } = this.parts;
    const client: MqttClient = session.current!;
    const { limits } = this.settings;
    if (msg.payload.length > limits.maxPayloadBytes) {
      log.error(
        { seq: msg.seqs[0], bytes: msg.payload.length, max: limits.maxPayloadBytes },
        'a record alone exceeds uplink.limits.maxPayloadBytes; sent in a message of its own',
      );
    }
    const entry = inflight.add(msg);
    this.settings.onMessage?.();
    client.publish(this.settings.topic, msg.payload, this.publishOptions(msg), (err) => {
      if (id !== session.id || !inflight.has(entry)) return;
      if (err) {
        this.failed(entry, err);
        return;
      }
      this.parts.pace.acked(this.parts.clock.monotonic() - entry.sentAt);
      inflight.settle(entry);
      const done = this.acked(entry);
      this.acking.add(done);
      void done.finally(() => this.acking.delete(done));
      this.wake();
    });
  }

  private publishOptions(msg: PackedMessage): { qos: 1; properties?: object } {
    if (!this.settings.v5) return { qos: 1 };
    const compressed = msg.compressed === true;
    return {
      qos: 1,
      properties: {
        contentType: compressed ? 'application/zlib' : 'application/json',
        payloadFormatIndicator: !compressed,
      },
    };
  }

  private failed(entry: InFlight, err: Error): void {
    const { session, inflight, log, pace } = this.parts;
    const code = (err as { code?: unknown }).code;
    const refusal = typeof code === 'number' ? describePuback(code) : null;
    if (refusal?.code === 'EDGEGW_E_UPLINK_THROTTLED') {
      // The broker discarded it: the records stay in the source; send them again, first, slower.
      inflight.settle(entry);
      this.refusals++;
      this.requeue(entry.msg);
      pace.refused();
      session.lastError = `${refusal.text}; pace now ${Math.round(pace.factor * 100)}% of the limits`;
      log.warn({ code: refusal.code, seq: entry.msg.seqs[0] }, 'publish refused as over quota; slowing down');
      this.wake();
      return;
    }
    // Not acknowledged on a live session: start over on a new connection (rewinds the cursor).
    session.abort(classifyError(err));
  }

  /** Keeps refused messages in seq order, so the lowest unacknowledged seq goes first. */
  private requeue(msg: PackedMessage): void {
    const first = msg.seqs[0] ?? 0;
    let i = this.retry.length;
    while (i > 0 && (this.retry[i - 1]!.seqs[0] ?? 0) > first) i--;
    this.retry.splice(i, 0, msg);
  }

  private async acked(entry: InFlight): Promise<void> {
    const { msg } = entry;
    try {
      const kept = await Promise.all(msg.seqs.map((seq) => this.parts.source.ack(seq)));
      // `false`: gone before its PUBACK (dropped, quarantined): not delivered. Tolerates a void ack.
      if (kept.every((k: boolean | void) => k !== false)) this.settings.onDelivered?.(msg.seqs, msg.readings);
    } catch (err) {
      // The record stays queued and is sent again later (at-least-once).
      this.parts.log.error({ err: err instanceof Error ? err.message : String(err) }, 'ack failed');
    }
  }
}
