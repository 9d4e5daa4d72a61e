// The MQTT session to the cloud (DESIGN.md §1, §2.2, §2.4, §2.7, §8), put together from its parts:
// session.ts owns the connection (a fresh mqtt.js client per attempt, backoff, takeover), pump.ts
// pulls and publishes what the in-flight window (inflight.ts) and the pacer allow, feed.ts decides
// what goes next (live before backlog), adaptive-pace.ts slows the pacer down when the broker
// struggles. After every disconnect the feed rewinds to the lowest unacknowledged seq, so nothing is
// skipped (at-least-once). MQTT 5 (uplink.protocol: 5): the broker's Receive Maximum and Maximum
// Packet Size from CONNACK cap the window and the message size.

import type { IConnackPacket } from 'mqtt';
import { systemClock, type Clock, type Lifecycle, type Progress } from '../types.js';
import { AdaptivePace } from './adaptive-pace.js';
import { Backoff } from './backoff.js';
import { parseBrokerUrl } from './broker-url.js';
import { CertificateWatch } from './certificate-watch.js';
import { clientOptions } from './client.js';
import { ControlChannel, type Control } from './control.js';
import { Feed } from './feed.js';
import { InFlightTable, type InFlight } from './inflight.js';
import type { UplinkOptions, UplinkState } from './options.js';
import { settingsChange } from './options.js';
import { messageBytes } from './pacer.js';
import { Pacing } from './pacing.js';
import { Pump, frameBytes, type PumpSettings } from './pump.js';
import { Session, type ConnectFn } from './session.js';
import { Throughput } from './throughput.js';

export type { UplinkLimits, UplinkOptions, UplinkState, UplinkStateName } from './options.js';

/** What a reload may change (gatewayId, the source and the hooks stay). */
export type UplinkSettings = Pick<
  UplinkOptions,
  | 'url'
  | 'alpn'
  | 'topic'
  | 'keepaliveMs'
  | 'limits'
  | 'ackTimeoutMs'
  | 'backoff'
  | 'tls'
  | 'protocol'
  | 'compression'
>;

/** The most records a clean stop still sends (what the last commits added to a caught-up uplink). */
const STOP_TAIL_RECORDS = 8;
/** IoT Core acknowledges in milliseconds; 20 s leaves room for a slow cellular link. */
export const DEFAULT_ACK_TIMEOUT_MS = 20_000;
/** How long a stop without a deadline waits for in-flight PUBACKs (DESIGN.md §2.7: a few seconds). */
export const DEFAULT_DRAIN_MS = 5000;

export { parseBrokerUrl };

export class Uplink implements Lifecycle {
  private readonly clock: Clock;
  private host: string;
  private port: number;
  private readonly backoff: Backoff;
  private readonly session: Session;
  private readonly inflight: InFlightTable;
  private readonly feed: Feed;
  private readonly pacer: Pacing;
  private readonly pace: AdaptivePace;
  private readonly pump: Pump;
  private readonly sent: Throughput;
  private readonly certificate: CertificateWatch;
  private readonly channel: ControlChannel;
  /** The broker's Maximum Packet Size from the last CONNACK (MQTT 5); Infinity when unset. */
  private maxPacket = Infinity;
  private running = false;
  private since: number;
  private unsubscribe: (() => void) | null = null;
  private stopping: Promise<void> | null = null;

  constructor(
    private opts: UplinkOptions,
    connect?: ConnectFn,
  ) {
    const { host, port, broker } = parseBrokerUrl(opts.url);
    this.host = host;
    this.port = port;
    this.clock = opts.clock ?? systemClock;
    this.since = this.clock.now();
    this.backoff = new Backoff(opts.backoff);
    this.channel = new ControlChannel(opts.log);
    this.session = new Session(
      {
        clock: this.clock,
        log: opts.log,
        backoff: this.backoff,
        keepaliveMs: opts.keepaliveMs,
        ...(connect ? { connect } : {}),
      },
      () => clientOptions(this.host, this.port, this.opts),
      {
        attempt: () => this.feed.restart(),
        up: (client, connack) => {
          this.up(connack);
          this.channel.attach(client);
        },
        down: (byBroker) => {
          this.channel.detach();
          this.down(byBroker);
        },
        state: () => (this.since = this.clock.now()),
        failed: (err, text) => this.certificate.failed(err, text),
      },
    );
    this.session.broker = broker;
    this.session.host = host;
    this.inflight = new InFlightTable(this.clock, opts.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS, (m) =>
      this.stalled(m),
    );
    this.feed = new Feed(opts.source, opts.gatewayId, this.payloadBytes(), opts.compression ?? 'none');
    this.sent = new Throughput(this.clock);
    this.pacer = new Pacing(opts.limits, this.frameBytes(), this.clock);
    this.pace = new AdaptivePace(this.clock, (f) => this.pacer.scale(f));
    this.pump = new Pump(
      {
        clock: this.clock,
        log: opts.log,
        source: opts.source,
        session: this.session,
        feed: this.feed,
        pacer: this.pacer,
        inflight: this.inflight,
        sent: this.sent,
        pace: this.pace,
      },
      this.pumpSettings(),
    );
    this.certificate = new CertificateWatch(opts.tls.cert, this.clock, opts.log);
  }

  /** Request/response topics on this connection (fleet shadow and jobs, certificate rotation). */
  get control(): Control {
    return this.channel;
  }

  state(): UplinkState {
    const { publishesPerSecond, bytesPerSecond } = this.opts.limits;
    return {
      state: this.session.state,
      broker: this.session.broker,
      since: this.since,
      inflight: this.inflight.size,
      lastError: this.session.lastError,
      protocol: this.opts.protocol ?? '3.1.1',
      throughput: this.sent.snapshot(),
      limits: { publishesPerSecond, bytesPerSecond },
      pace: { ...this.pace.state(), ...this.pacer.rates(), refused: this.pump.refused },
      certificate: this.certificate.info(),
    };
  }

  /**
   * For the watchdog: the state machine's next step and its deadline. A broker outage is no stall
   * (connect attempts time out, backoff timers fire); a connect, PUBACK wait or record pull that
   * outlives its own timeout is. The ack watch aborts within 1.25 ack timeouts.
   */
  progress(): Progress {
    if (!this.running) return { due: null, what: 'stopped' };
    const step = this.session.due();
    if (step !== null) return step;
    const ackMs = this.inflight.ackTimeoutMs;
    let best: Progress = { due: null, what: 'records' };
    const pulling = this.pump.pumpingSince;
    if (pulling !== null) best = { due: pulling + ackMs, what: 'record pull' };
    const oldest = this.inflight.oldest();
    if (oldest !== undefined) {
      const due = oldest.sentAt + ackMs * 1.25;
      if (best.due === null || due < best.due)
        best = { due, what: `PUBACK of seq ${oldest.msg.seqs[0] ?? '?'}` };
    }
    return best;
  }

  /**
   * How many records may wait in memory for their PUBACK before being written (write-behind,
   * DESIGN.md §2.1): the in-flight window while connected; 0 while not, or stopping.
   */
  writeBehindRoom(): number {
    if (!this.running || this.stopping !== null || !this.session.connected) return 0;
    return Math.min(this.opts.limits.inflight, this.inflight.receiveMaximum);
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.certificate.start();
    this.unsubscribe = this.opts.source.onAppend(() => {
      this.feed.appended();
      this.pump.wake();
    });
    this.pump.start();
    this.session.start();
    return Promise.resolve();
  }

  /**
   * DESIGN.md §2.7, the uplink's drain policy: sends the live tail (what the last commits added, as
   * far as the window and the pacer allow right now), never the backlog, then waits until
   * `deadline` (Clock.monotonic(); default 5 s from now) for in-flight PUBACKs and closes;
   * everything unacknowledged stays in the source.
   */
  stop(deadline = this.clock.monotonic() + DEFAULT_DRAIN_MS): Promise<void> {
    if (!this.running) return this.stopping ?? Promise.resolve();
    // A second call while the tail is sent joins the first one.
    this.stopping ??= this.shutdown(deadline).finally(() => (this.stopping = null));
    return this.stopping;
  }

  /**
   * A reload (operations issue). Limits, topic, ack timeout, backoff and compression apply in place:
   * nothing published is sent again, what is packed and unsent is repacked. A new broker URL, ALPN,
   * keep-alive, protocol or TLS material needs a new connection: the current one ends at once and the
   * next starts without a backoff delay; what was in flight is resent there (the source still holds
   * it). Returns whether it reconnected.
   */
  reconfigure(next: UplinkSettings): { reconnected: boolean } {
    const prev = this.opts;
    const { reconnect, retune } = settingsChange(prev, next);
    const { host, port, broker } = parseBrokerUrl(next.url);
    const payloadBefore = this.payloadBytes();
    this.opts = { ...prev, ...next };
    if (next.alpn === undefined) delete this.opts.alpn;
    [this.host, this.port] = [host, port];
    this.session.broker = broker;
    this.session.host = host;
    this.inflight.ackTimeoutMs = next.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
    this.certificate.replace(next.tls.cert);
    this.backoff.retune(next.backoff);
    if (retune || reconnect) {
      this.pump.update(this.pumpSettings());
      this.pacer.retune(next.limits, this.frameBytes());
      if (
        this.payloadBytes() !== payloadBefore ||
        (prev.compression ?? 'none') !== (next.compression ?? 'none')
      ) {
        this.feed.resize(this.payloadBytes(), next.compression ?? 'none');
      }
    }
    if (reconnect) this.session.retune(next.keepaliveMs);
    if (!this.running || this.stopping !== null) return { reconnected: false };
    if (reconnect) {
      this.maxPacket = Infinity;
      this.session.restart();
      return { reconnected: true };
    }
    this.pump.wake();
    return { reconnected: false };
  }

  /** The largest frame the packer normally makes (payload, topic, header), for the pacer's margins. */
  private frameBytes(): number {
    return frameBytes(this.payloadBytes(), this.topicName(), this.opts.protocol === '5');
  }

  private topicName(): string {
    return this.opts.topic.replaceAll('{gateway}', this.opts.gatewayId);
  }

  private pumpSettings(): PumpSettings {
    const o = this.opts;
    return {
      topic: this.topicName(),
      limits: o.limits,
      v5: o.protocol === '5',
      ...(o.onDelivered ? { onDelivered: o.onDelivered } : {}),
      ...(o.onMessage ? { onMessage: o.onMessage } : {}),
    };
  }

  /** The payload size messages are packed to: the paced size, within the broker's packet limit. */
  private payloadBytes(): number {
    const paced = messageBytes(this.opts.limits);
    if (this.maxPacket === Infinity) return paced;
    // The whole PUBLISH packet must fit: leave the topic and the header out of it.
    const topic = Buffer.byteLength(this.topicName());
    return Math.max(1, Math.min(paced, this.maxPacket - topic - 64));
  }

  private up(connack: IConnackPacket): void {
    const props = connack.properties;
    this.inflight.receiveMaximum = props?.receiveMaximum ?? Infinity;
    const maxPacket = props?.maximumPacketSize ?? Infinity;
    if (maxPacket !== this.maxPacket) {
      const before = this.payloadBytes();
      this.maxPacket = maxPacket;
      if (this.payloadBytes() !== before) {
        this.feed.resize(this.payloadBytes(), this.opts.compression ?? 'none');
        this.pacer.retune(this.opts.limits, this.frameBytes());
      }
    }
    this.sent.connected();
    this.certificate.connected();
    this.pump.wake();
  }

  /** The connection ended: everything not acknowledged counts as not sent; pull again from the lowest. */
  private down(byBroker: boolean): void {
    if (byBroker && this.inflight.size > 0) this.pace.dropped();
    this.feed.rewind(this.pump.lowestHeld());
    this.pump.reset();
    this.inflight.clear();
  }

  /** A PUBACK did not come within the ack timeout: it never will on this connection (MQTT 3.1.1). */
  private stalled(oldest: InFlight): void {
    if (!this.session.connected) return;
    const timeoutMs = this.inflight.ackTimeoutMs;
    const seconds = Math.round(timeoutMs / 100) / 10;
    const seq = oldest.msg.seqs[0];
    this.opts.log.warn(
      { code: 'EDGEGW_E_UPLINK_STALLED', seq, inflight: this.inflight.size, timeoutMs },
      'no PUBACK within the ack timeout; reconnecting to resend',
    );
    this.session.abort(
      `EDGEGW_E_UPLINK_STALLED: no PUBACK for seq ${seq ?? '?'} within ${seconds} s; reconnected to resend`,
    );
  }

  private async shutdown(deadline: number): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.session.quiesce();
    if (this.session.connected && this.feed.tail(STOP_TAIL_RECORDS)) {
      this.pump.wake();
      await this.pump.round;
    }
    this.running = false;
    await this.pump.halt();
    this.pace.stop();
    this.certificate.stop();
    this.feed.rewind(this.pump.lowestHeld());
    const drainMs = Math.max(0, deadline - this.clock.monotonic());
    if (this.session.connected && this.inflight.size > 0) await this.inflight.waitDrained(drainMs);
    const left = this.inflight.size;
    await this.session.stop();
    await this.pump.settled();
    if (left > 0) {
      this.opts.log.info({ messages: left }, 'stopped with unacknowledged messages; they stay queued');
    }
    this.pump.reset();
    this.inflight.clear();
  }
}
