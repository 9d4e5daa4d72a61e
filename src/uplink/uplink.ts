// The MQTT session to the cloud (DESIGN.md §1, §2.2, §2.4, §2.7, §8). It pulls records only when
// both the in-flight window and the quota pacer allow, so the backlog stays on disk; live records
// go ahead of a backlog (feed.ts); it owns reconnects (a fresh mqtt.js client each time, with
// backoff) and rewinds to the lowest unacknowledged seq after every disconnect, so nothing is
// skipped (at-least-once).

import mqtt, { type MqttClient } from 'mqtt';
import { systemClock, type Clock, type Lifecycle, type Progress } from '../types.js';
import { AckWatch } from './ack-watch.js';
import { Backoff } from './backoff.js';
import { CertificateWatch } from './certificate-watch.js';
import { classifyError } from './errors.js';
import { CONNECT_TIMEOUT_MS, clientOptions, endClient, noDelay, parseBrokerUrl } from './client.js';
import { Feed } from './feed.js';
import { LinkHealth, MIN_STABLE_MS } from './link-health.js';
import type { UplinkOptions, UplinkState, UplinkStateName } from './options.js';
import { messageBytes } from './pacer.js';
import { Pacing } from './pacing.js';
import { settingsChange } from './options.js';
import { Throughput } from './throughput.js';
import type { PackedMessage } from './wire.js';

export type { UplinkLimits, UplinkOptions, UplinkState, UplinkStateName } from './options.js';

/** What a reload may change (gatewayId, the source and the hooks stay). */
export type UplinkSettings = Pick<
  UplinkOptions,
  'url' | 'alpn' | 'topic' | 'keepaliveMs' | 'limits' | 'compression' | 'ackTimeoutMs' | 'backoff' | 'tls'
>;

interface InFlight {
  seqs: number[];
  readings: number;
  /** Monotonic send time (the watchdog's PUBACK deadline). */
  sentAt: number;
}

/** MQTT fixed header, remaining length, topic length and packet id, as charged by the pacer. */
const PUBLISH_OVERHEAD = 9;
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
  private broker: string;
  private topic: string;
  private topicBytes: number;
  private readonly backoff: Backoff;
  private health: LinkHealth;
  private readonly watch: AckWatch<InFlight>;
  private readonly feed: Feed;
  private readonly pacer: Pacing;
  private readonly sent: Throughput;
  private readonly certificate: CertificateWatch;

  private client: MqttClient | null = null;
  /** Bumped at every connect and at stop: callbacks of an older session are ignored. */
  private session = 0;
  private connected = false;
  /** Why we ended the current connection ourselves (a stall, a failed publish); null if we did not. */
  private ending: string | null = null;
  private running = false;
  private readonly inflight = new Set<InFlight>();
  private pumping = false;
  private again = false;
  private pumpDone: Promise<void> = Promise.resolve();
  private paceTimer: unknown = null;
  private paceDue = 0;
  private reconnectTimer: unknown = null;
  private readonly acking = new Set<Promise<void>>();
  private drained: (() => void) | null = null;
  private unsubscribe: (() => void) | null = null;
  private current: UplinkState;
  /** Monotonic: when the state was entered, when the reconnect timer fires, the pump's last round. */
  private enteredAt = 0;
  private reconnectDue = 0;
  private pumpSince = 0;
  private stopping: Promise<void> | null = null;

  constructor(private opts: UplinkOptions) {
    const { host, port, broker } = parseBrokerUrl(opts.url);
    this.host = host;
    this.port = port;
    this.broker = broker;
    this.clock = opts.clock ?? systemClock;
    this.topic = opts.topic.replaceAll('{gateway}', opts.gatewayId);
    this.topicBytes = Buffer.byteLength(this.topic);
    this.backoff = new Backoff(opts.backoff);
    this.health = new LinkHealth(this.clock, this.backoff, Math.max(MIN_STABLE_MS, opts.keepaliveMs));
    this.watch = new AckWatch(this.clock, opts.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS, (m) =>
      this.stalled(m),
    );
    const payloadBytes = messageBytes(opts.limits);
    this.feed = new Feed(opts.source, opts.gatewayId, payloadBytes, opts.compression);
    this.pacer = new Pacing(opts.limits, payloadBytes + this.topicBytes + PUBLISH_OVERHEAD, this.clock);
    this.sent = new Throughput(this.clock);
    this.certificate = new CertificateWatch(opts.tls.cert, this.clock, opts.log);
    this.current = { state: 'offline', broker, since: this.clock.now(), inflight: 0, lastError: null };
  }

  state(): UplinkState {
    const { publishesPerSecond, bytesPerSecond } = this.opts.limits;
    return {
      ...this.current,
      inflight: this.inflight.size,
      throughput: this.sent.snapshot(),
      limits: { publishesPerSecond, bytesPerSecond },
      certificate: this.certificate.info(),
    };
  }

  /**
   * For the watchdog: the state machine's next step and its deadline. A broker outage is no stall
   * (connect attempts time out, backoff timers fire); a connect, PUBACK wait or record pull that
   * outlives its own timeout is. The AckWatch aborts within 1.25 ack timeouts.
   */
  progress(): Progress {
    if (!this.running) return { due: null, what: 'stopped' };
    if (this.current.state === 'connecting') {
      return { due: this.enteredAt + CONNECT_TIMEOUT_MS, what: 'CONNACK or connect timeout' };
    }
    if (this.current.state === 'backoff') return { due: this.reconnectDue, what: 'reconnect timer' };
    const ackMs = this.watch.timeoutMs;
    let best: Progress = { due: null, what: 'records' };
    if (this.pumping) best = { due: this.pumpSince + ackMs, what: 'record pull' };
    for (const m of this.inflight) {
      const due = m.sentAt + ackMs * 1.25;
      if (best.due === null || due < best.due) best = { due, what: `PUBACK of seq ${m.seqs[0] ?? '?'}` };
      break; // a Set keeps send order: the first is the oldest
    }
    return best;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.certificate.start();
    this.unsubscribe = this.opts.source.onAppend(() => {
      this.feed.appended();
      this.wake();
    });
    this.connect();
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
   * A reload (operations issue). Limits, topic, ack timeout and backoff apply in place: nothing
   * published is sent again, what is packed and unsent is repacked. A new broker URL, ALPN,
   * keep-alive or TLS material needs a new connection: the current one ends at once and the next
   * starts without a backoff delay; what was in flight is resent there (the source still holds it).
   * Returns whether it reconnected.
   */
  reconfigure(next: UplinkSettings): { reconnected: boolean } {
    const prev = this.opts;
    const { reconnect, retune } = settingsChange(prev, next);
    const { host, port, broker } = parseBrokerUrl(next.url);
    this.opts = { ...prev, ...next };
    if (next.alpn === undefined) delete this.opts.alpn;
    [this.host, this.port, this.broker] = [host, port, broker];
    this.current = { ...this.current, broker };
    this.watch.timeoutMs = next.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
    this.certificate.replace(next.tls.cert);
    this.backoff.retune(next.backoff);
    if (retune) {
      this.topic = next.topic.replaceAll('{gateway}', prev.gatewayId);
      this.topicBytes = Buffer.byteLength(this.topic);
      const payloadBytes = messageBytes(next.limits);
      this.pacer.retune(next.limits, payloadBytes + this.topicBytes + PUBLISH_OVERHEAD);
      if (payloadBytes !== messageBytes(prev.limits) || next.compression !== prev.compression) {
        this.feed.resize(payloadBytes, next.compression ?? 'none');
      }
    }
    if (reconnect) {
      this.health.cancel();
      this.health = new LinkHealth(this.clock, this.backoff, Math.max(MIN_STABLE_MS, next.keepaliveMs));
    }
    if (!this.running || this.stopping !== null) return { reconnected: false };
    if (reconnect) {
      this.restartSession();
      return { reconnected: true };
    }
    this.wake();
    return { reconnected: false };
  }

  /** Ends the current connection (or attempt) and connects again now, with the current settings. */
  private restartSession(): void {
    const client = this.client;
    this.session++;
    this.client = null;
    this.connected = false;
    this.clearTimer('reconnectTimer');
    if (client) void endClient(client, this.clock);
    this.rewind();
    this.opts.log.info({ broker: this.broker }, 'uplink reconnecting with the reloaded settings');
    this.connect();
  }

  private async shutdown(deadline: number): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.clearTimer('reconnectTimer');
    if (this.connected && this.feed.tail(STOP_TAIL_RECORDS)) {
      this.wake();
      await this.pumpDone;
    }
    this.running = false;
    this.clearTimer('paceTimer');
    this.health.cancel();
    this.certificate.stop();
    this.feed.rewind(this.lowestInFlight());
    await this.pumpDone;
    const drainMs = Math.max(0, deadline - this.clock.monotonic());
    if (this.connected && this.inflight.size > 0) await this.waitDrained(drainMs);
    const client = this.client;
    this.session++;
    this.client = null;
    this.connected = false;
    if (client) await endClient(client, this.clock);
    await Promise.allSettled([...this.acking]);
    if (this.inflight.size > 0) {
      this.opts.log.info(
        { messages: this.inflight.size },
        'stopped with unacknowledged messages; they stay queued',
      );
    }
    this.inflight.clear();
    this.watch.clear();
    this.setState('offline');
  }

  private connect(): void {
    this.reconnectTimer = null;
    if (!this.running) return;
    const session = ++this.session;
    this.ending = null;
    this.feed.restart();
    this.setState('connecting');
    const client = mqtt.connect(clientOptions(this.host, this.port, this.opts));
    this.client = client;
    noDelay(client);
    let failed: string | null = null;
    client.on('connect', () => {
      if (session !== this.session) return;
      noDelay(client);
      this.connected = true;
      this.health.connected();
      this.sent.connected();
      this.certificate.connected();
      this.setState('connected');
      this.opts.log.info({ broker: this.broker }, 'uplink connected');
      this.wake();
    });
    client.on('error', (err: Error) => {
      if (session !== this.session || this.ending !== null) return;
      failed = classifyError(err);
      this.current.lastError = failed;
      this.certificate.failed(err, failed);
    });
    client.on('close', () => {
      if (session !== this.session) return;
      this.lost(client, failed);
    });
  }

  private lost(client: MqttClient, failed: string | null): void {
    const wasConnected = this.connected;
    const ending = this.ending;
    this.session++;
    this.connected = false;
    this.client = null;
    void endClient(client, this.clock);
    this.rewind();
    if (failed === null && ending === null) {
      this.current.lastError = wasConnected
        ? 'EDGEGW_E_UPLINK_CONNECT: connection closed'
        : 'EDGEGW_E_UPLINK_CONNECT: closed before CONNACK';
    }
    const closed = this.health.closed(wasConnected && ending === null);
    if (closed.takeover) {
      this.current.lastError =
        `EDGEGW_E_UPLINK_TAKEOVER: the broker closed ${closed.shortLived} connections in a row soon after ` +
        'CONNACK; another client may be using this gateway id';
    }
    if (!this.running) return;
    this.opts.log.warn(
      {
        code: this.current.lastError?.split(':')[0],
        reason: this.current.lastError,
        retryMs: closed.delayMs,
        ...(closed.shortLived > 0 ? { shortLived: closed.shortLived } : {}),
      },
      wasConnected ? 'uplink disconnected' : 'uplink connect failed',
    );
    this.setState('backoff');
    this.reconnectDue = this.clock.monotonic() + closed.delayMs;
    this.reconnectTimer = this.clock.setTimeout(() => this.connect(), closed.delayMs);
  }

  /** Ends the connection ourselves (its close then rewinds and reconnects); the first reason given stays. */
  private abort(client: MqttClient, reason: string): void {
    if (this.ending !== null) return;
    this.ending = reason;
    this.current.lastError = reason;
    client.end(true);
  }

  /** A PUBACK did not come within the ack timeout: it never will on this connection (MQTT 3.1.1). */
  private stalled(oldest: InFlight): void {
    const client = this.client;
    if (client === null || !this.connected) return;
    const seconds = Math.round(this.watch.timeoutMs / 100) / 10;
    this.opts.log.warn(
      {
        code: 'EDGEGW_E_UPLINK_STALLED',
        seq: oldest.seqs[0],
        inflight: this.inflight.size,
        timeoutMs: this.watch.timeoutMs,
      },
      'no PUBACK within the ack timeout; reconnecting to resend',
    );
    this.abort(
      client,
      `EDGEGW_E_UPLINK_STALLED: no PUBACK for seq ${oldest.seqs[0] ?? '?'} within ${seconds} s; reconnected to resend`,
    );
  }

  /** Everything not acknowledged counts as not sent: pull again from the lowest unacked seq. */
  private rewind(): void {
    this.feed.rewind(this.lowestInFlight());
    this.inflight.clear();
    this.watch.clear();
    this.clearTimer('paceTimer');
    this.drained?.();
  }

  private lowestInFlight(): number {
    let low = Infinity;
    for (const m of this.inflight) low = Math.min(low, m.seqs[0] ?? Infinity);
    return low;
  }

  private wake(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    this.pumpDone = this.pump()
      .catch((err: unknown) => {
        this.opts.log.error({ err: err instanceof Error ? err.message : String(err) }, 'uplink pull failed');
      })
      .finally(() => {
        this.pumping = false;
      });
  }

  private async pump(): Promise<void> {
    do {
      this.again = false;
      await this.fill();
    } while (this.again && this.running && this.connected);
  }

  /**
   * Publishes what the window and the pacer allow, live messages first, pulling records only when
   * there is room.
   */
  private async fill(): Promise<void> {
    const session = this.session;
    const { inflight: window } = this.opts.limits;
    for (;;) {
      this.pumpSince = this.clock.monotonic(); // each round (a pull, then publishes) is progress
      if (!this.running || !this.connected || session !== this.session) return;
      if (this.feed.liveWaiting) {
        await this.feed.pull(0); // live records first: pack them before sending what is ready
        continue;
      }
      // How many backlog messages may wait packed: one, or two while the pacer holds the first
      // (the next one is packed meanwhile); none while the window is full.
      let ahead = 1;
      for (let next = this.feed.peek(); next !== null; next = this.feed.peek()) {
        if (this.inflight.size >= window) {
          ahead = 0; // a PUBACK wakes us
          break;
        }
        const cost = next.msg.payload.length + this.topicBytes + PUBLISH_OVERHEAD;
        const wait = this.pacer.waitMs(cost);
        if (wait > 0) {
          this.paceIn(wait);
          ahead = 2;
          break;
        }
        this.pacer.take(cost);
        this.sent.sent(cost);
        this.feed.shift(next.live);
        this.publish(next.msg, session);
      }
      if (!(await this.feed.pull(ahead))) return;
    }
  }

  /** Wakes the pump in `ms`; an earlier wake replaces a later one (a small live message may fit sooner). */
  private paceIn(ms: number): void {
    const due = this.clock.now() + ms;
    if (this.paceTimer !== null) {
      if (this.paceDue <= due) return;
      this.clock.clearTimeout(this.paceTimer);
    }
    this.paceDue = due;
    this.paceTimer = this.clock.setTimeout(() => {
      this.paceTimer = null;
      this.wake();
    }, ms);
  }

  private publish(msg: PackedMessage, session: number): void {
    const client = this.client!;
    if (msg.payload.length > this.opts.limits.maxPayloadBytes) {
      this.opts.log.error(
        { seq: msg.seqs[0], bytes: msg.payload.length, max: this.opts.limits.maxPayloadBytes },
        'a record alone exceeds uplink.limits.maxPayloadBytes; sent in a message of its own',
      );
    }
    const entry: InFlight = { seqs: msg.seqs, readings: msg.readings, sentAt: this.clock.monotonic() };
    this.inflight.add(entry);
    this.watch.sent(entry);
    this.opts.onMessage?.();
    client.publish(this.topic, msg.payload, { qos: 1 }, (err) => {
      if (session !== this.session || !this.inflight.has(entry)) return;
      if (err) {
        // Not acknowledged on a live session: start over on a new connection (rewinds the cursor).
        this.abort(client, classifyError(err));
        return;
      }
      this.inflight.delete(entry);
      this.watch.acked(entry);
      const done = this.acked(entry);
      this.acking.add(done);
      void done.finally(() => this.acking.delete(done));
      if (this.inflight.size === 0) this.drained?.();
      this.wake();
    });
  }

  private async acked(entry: InFlight): Promise<void> {
    try {
      const kept = await Promise.all(entry.seqs.map((seq) => this.opts.source.ack(seq)));
      // `false`: gone before its PUBACK (dropped, quarantined): not delivered. Tolerates a void ack.
      if (kept.every((k: boolean | void) => k !== false)) this.opts.onDelivered?.(entry.seqs, entry.readings);
    } catch (err) {
      // The record stays queued and is sent again later (at-least-once).
      this.opts.log.error({ err: err instanceof Error ? err.message : String(err) }, 'ack failed');
    }
  }

  private waitDrained(ms: number): Promise<void> {
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

  private clearTimer(name: 'paceTimer' | 'reconnectTimer'): void {
    if (this[name] !== null) this.clock.clearTimeout(this[name]);
    this[name] = null;
  }

  private setState(state: UplinkStateName): void {
    if (this.current.state === state) return;
    this.current = { ...this.current, state, since: this.clock.now() };
    this.enteredAt = this.clock.monotonic();
  }
}
