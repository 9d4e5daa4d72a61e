// AWS IoT Core's per-connection limits (DESIGN.md §8), as the test broker's gate enforces them:
// the numbers, the counters a test reads, and the sliding one-second windows behind them.
// Simulated: what a device on one connection meets (publish rate, byte rate, in-flight QoS 1,
// payload and topic size, connect rate per client id). Not simulated: account-wide quotas, rules
// engine and shadow limits, subscribe limits, the 1–2 week connection lifetime, QoS 2 refusal.

import type { Clock } from '../types.js';

export interface IotCoreRules {
  /** Publishes forwarded in any sliding second; the excess is discarded (not forwarded). */
  publishesPerSecond: number;
  /** PUBLISH bytes read in any sliding second; beyond it the broker stops reading for a while. */
  bytesPerSecond: number;
  /** Unacknowledged QoS 1 publishes per connection; beyond it the broker stops reading. */
  inflight: number;
  /** A larger payload closes the connection (MQTT 5: DISCONNECT 0x95 first). */
  maxPayloadBytes: number;
  /** A longer topic (UTF-8 bytes) or one with more slashes closes the connection (MQTT 5: 0x90). */
  maxTopicBytes: number;
  maxTopicSlashes: number;
  /** A CONNECT sooner than this after the client id's last accepted one is refused. */
  connectIntervalMs: number;
}

export const IOT_CORE_RULES: Readonly<IotCoreRules> = Object.freeze({
  publishesPerSecond: 100,
  bytesPerSecond: 512 * 1024,
  inflight: 100,
  maxPayloadBytes: 128 * 1024,
  maxTopicBytes: 256,
  maxTopicSlashes: 7,
  connectIntervalMs: 1000,
});

/** Everything the rules discarded, delayed or refused since the broker started. */
export interface RuleCounts {
  /** Publishes over publishesPerSecond, never forwarded (QoS 1: no PUBACK, or 0x97 under MQTT 5). */
  discarded: number;
  /** Times reading a connection stopped for the byte rate, and for how long in all (ms). */
  delayedBytes: number;
  delayedBytesMs: number;
  /** Times reading a connection stopped because it had `inflight` unacknowledged publishes. */
  delayedInflight: number;
  /** Connections closed for a payload, or a topic, over the limits. */
  refusedPayload: number;
  refusedTopic: number;
  /** CONNECTs refused for coming within connectIntervalMs of the client id's last. */
  refusedConnects: number;
}

export function newRuleCounts(): RuleCounts {
  return {
    discarded: 0,
    delayedBytes: 0,
    delayedBytesMs: 0,
    delayedInflight: 0,
    refusedPayload: 0,
    refusedTopic: 0,
    refusedConnects: 0,
  };
}

/** `true` means IoT Core's own numbers; a partial object overrides some of them. */
export function resolveRules(r: Partial<IotCoreRules> | true | undefined): IotCoreRules | null {
  if (r === undefined) return null;
  const rules = { ...IOT_CORE_RULES, ...(r === true ? {} : r) };
  for (const [k, v] of Object.entries(rules)) {
    if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`iotcore.${k} must be a positive number`);
  }
  return rules;
}

/** Why a publish may not be forwarded: its size or topic breaks a rule. Null when it may. */
export function publishViolation(
  rules: IotCoreRules,
  topic: Buffer,
  payloadBytes: number,
): 'payload' | 'topic' | null {
  if (payloadBytes > rules.maxPayloadBytes) return 'payload';
  if (topic.length > rules.maxTopicBytes) return 'topic';
  let slashes = 0;
  for (const b of topic) if (b === 0x2f) slashes++;
  return slashes > rules.maxTopicSlashes ? 'topic' : null;
}

/** One connection's sliding one-second windows: publishes forwarded and bytes read. */
export class ConnectionQuota {
  /** Monotonic times of the last `publishesPerSecond` forwarded publishes (a ring). */
  private readonly sent: number[] = [];
  private head = 0;
  /** Bytes read, by monotonic time, oldest first; `inWindow` is their sum. */
  private readonly reads: { t: number; n: number }[] = [];
  private inWindow = 0;

  constructor(
    private readonly rules: IotCoreRules,
    private readonly clock: Clock,
  ) {}

  /** Ms to wait before `n` more bytes fit the byte window (0: now). Takes nothing. */
  bytesWait(n: number): number {
    const now = this.clock.monotonic();
    while (this.reads.length > 0 && this.reads[0]!.t <= now - 1000) this.inWindow -= this.reads.shift()!.n;
    // A frame bigger than the whole window still passes once the window is empty.
    if (this.inWindow === 0 || this.inWindow + n <= this.rules.bytesPerSecond) return 0;
    let freed = 0;
    for (const r of this.reads) {
      freed += r.n;
      if (this.inWindow - freed + n <= this.rules.bytesPerSecond || freed === this.inWindow) {
        return Math.max(1, Math.ceil(r.t + 1000 - now));
      }
    }
    return 1;
  }

  takeBytes(n: number): void {
    this.reads.push({ t: this.clock.monotonic(), n });
    this.inWindow += n;
  }

  /** Counts a publish in the window if it has room; false means it must be discarded. */
  takePublish(): boolean {
    const now = this.clock.monotonic();
    const max = this.rules.publishesPerSecond;
    if (this.sent.length < max) {
      this.sent.push(now);
      return true;
    }
    if (now - this.sent[this.head]! < 1000) return false;
    this.sent[this.head] = now;
    this.head = (this.head + 1) % max;
    return true;
  }
}

/** Accepted CONNECTs by client id, broker-wide (IoT Core's limit is per client id, not per socket). */
export class ConnectRegistry {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly rules: IotCoreRules,
    private readonly clock: Clock,
  ) {}

  /** True (and remembered) when `clientId` may connect now. */
  admit(clientId: string): boolean {
    const now = this.clock.monotonic();
    for (const [id, t] of this.last) if (now - t >= this.rules.connectIntervalMs) this.last.delete(id);
    if (this.last.has(clientId)) return false;
    this.last.set(clientId, now);
    return true;
  }
}
