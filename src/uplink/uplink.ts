// The MQTT session to the cloud (DESIGN.md §1, §2.2, §2.4, §2.7, §8). It pulls records only when
// both the in-flight window and the quota pacer allow, so the backlog stays on disk; live records
// go ahead of a backlog (feed.ts); it owns reconnects (a fresh mqtt.js client each time, with
// backoff) and rewinds to the lowest unacknowledged seq after every disconnect, so nothing is
// skipped (at-least-once).

import net from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { EdgegwError, Exit } from '../errors.js';
import { systemClock, type Clock, type Lifecycle, type RecordSource } from '../types.js';
import { Backoff } from './backoff.js';
import { classifyError } from './errors.js';
import { Feed } from './feed.js';
import { QuotaPacer, messageBytes } from './pacer.js';
import type { PackedMessage } from './wire.js';

export interface UplinkLimits {
  publishesPerSecond: number;
  bytesPerSecond: number;
  maxPayloadBytes: number;
  inflight: number;
}

export interface UplinkOptions {
  gatewayId: string;
  url: string;
  alpn?: string;
  /** `{gateway}` is replaced by gatewayId. */
  topic: string;
  keepaliveMs: number;
  limits: UplinkLimits;
  backoff: { minMs: number; maxMs: number };
  tls: { ca: Buffer | string; cert: Buffer | string; key: Buffer | string };
  source: RecordSource;
  log: Logger;
  clock?: Clock;
  onDelivered?: (seqs: number[], readings: number) => void;
  onMessage?: () => void;
}

export type UplinkStateName = 'connected' | 'connecting' | 'backoff' | 'offline';

export interface UplinkState {
  state: UplinkStateName;
  broker: string;
  since: number;
  inflight: number;
  lastError: string | null;
}

interface InFlight {
  seqs: number[];
  readings: number;
}

/** MQTT fixed header, remaining length, topic length and packet id, as charged by the pacer. */
const PUBLISH_OVERHEAD = 9;
const CONNECT_TIMEOUT_MS = 10_000;
const END_TIMEOUT_MS = 1_000;

/** Parses and checks the broker URL: mqtts only, no credentials in it (defence in depth). */
export function parseBrokerUrl(url: string): { host: string; port: number; broker: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new EdgegwError('EDGEGW_E_CONFIG', 'uplink.url is not a valid URL', Exit.CONFIG);
  }
  if (u.protocol !== 'mqtts:') {
    throw new EdgegwError('EDGEGW_E_CONFIG', 'uplink.url must use mqtts://', Exit.CONFIG);
  }
  if (u.username !== '' || u.password !== '') {
    throw new EdgegwError('EDGEGW_E_CONFIG', 'uplink.url must not contain user:pass@', Exit.CONFIG);
  }
  if (u.hostname === '') throw new EdgegwError('EDGEGW_E_CONFIG', 'uplink.url has no host', Exit.CONFIG);
  const port = u.port === '' ? 8883 : Number(u.port);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return { host, port, broker: `${u.hostname}:${port}` };
}

export class Uplink implements Lifecycle {
  private readonly clock: Clock;
  private readonly host: string;
  private readonly port: number;
  private readonly broker: string;
  private readonly topic: string;
  private readonly topicBytes: number;
  private readonly backoff: Backoff;
  private readonly feed: Feed;
  private readonly pacer: QuotaPacer;

  private client: MqttClient | null = null;
  /** Bumped at every connect and at stop: callbacks of an older session are ignored. */
  private session = 0;
  private connected = false;
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

  constructor(private readonly opts: UplinkOptions) {
    const { host, port, broker } = parseBrokerUrl(opts.url);
    this.host = host;
    this.port = port;
    this.broker = broker;
    this.clock = opts.clock ?? systemClock;
    this.topic = opts.topic.replaceAll('{gateway}', opts.gatewayId);
    this.topicBytes = Buffer.byteLength(this.topic);
    this.backoff = new Backoff(opts.backoff);
    const payloadBytes = messageBytes(opts.limits);
    this.feed = new Feed(opts.source, opts.gatewayId, payloadBytes);
    this.pacer = new QuotaPacer(opts.limits, payloadBytes + this.topicBytes + PUBLISH_OVERHEAD, this.clock);
    this.current = { state: 'offline', broker, since: this.clock.now(), inflight: 0, lastError: null };
  }

  state(): UplinkState {
    return { ...this.current, inflight: this.inflight.size };
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.unsubscribe = this.opts.source.onAppend(() => {
      this.feed.appended();
      this.wake();
    });
    this.connect();
    return Promise.resolve();
  }

  /** Stops pulling, waits up to `drainMs` for in-flight PUBACKs, then closes; unacked records stay in the source. */
  async stop(drainMs = 5000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.clearTimer('reconnectTimer');
    this.clearTimer('paceTimer');
    this.feed.rewind(this.lowestInFlight());
    await this.pumpDone;
    if (this.connected && this.inflight.size > 0) await this.waitDrained(drainMs);
    const client = this.client;
    this.session++;
    this.client = null;
    this.connected = false;
    if (client) await this.endClient(client);
    await Promise.allSettled([...this.acking]);
    if (this.inflight.size > 0) {
      this.opts.log.info(
        { messages: this.inflight.size },
        'stopped with unacknowledged messages; they stay queued',
      );
    }
    this.inflight.clear();
    this.setState('offline');
  }

  private connect(): void {
    this.reconnectTimer = null;
    if (!this.running) return;
    const session = ++this.session;
    this.feed.restart();
    this.setState('connecting');
    const { tls, alpn, gatewayId, keepaliveMs } = this.opts;
    const options: IClientOptions & { minVersion: 'TLSv1.2' } = {
      protocol: 'mqtts',
      host: this.host,
      port: this.port,
      protocolVersion: 4,
      clientId: gatewayId,
      clean: true,
      keepalive: Math.max(1, Math.round(keepaliveMs / 1000)),
      reconnectPeriod: 0,
      connectTimeout: CONNECT_TIMEOUT_MS,
      resubscribe: false,
      queueQoSZero: false,
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      // SNI always (IoT Core needs it); TLS forbids an IP address as a server name.
      ...(net.isIP(this.host) === 0 ? { servername: this.host } : {}),
      ...(alpn === undefined ? {} : { ALPNProtocols: [alpn] }),
    };
    const client = mqtt.connect(options);
    this.client = client;
    this.noDelay(client);
    let failed: string | null = null;
    client.on('connect', () => {
      if (session !== this.session) return;
      this.noDelay(client);
      this.connected = true;
      this.backoff.reset();
      this.setState('connected');
      this.opts.log.info({ broker: this.broker }, 'uplink connected');
      this.wake();
    });
    client.on('error', (err: Error) => {
      if (session !== this.session) return;
      failed = classifyError(err);
      this.current.lastError = failed;
    });
    client.on('close', () => {
      if (session !== this.session) return;
      this.lost(client, failed);
    });
  }

  /** mqtt.js never sets TCP_NODELAY; small QoS 1 publishes over TLS stall without it (DESIGN.md §8). */
  private noDelay(client: MqttClient): void {
    const stream: unknown = client.stream;
    if (stream instanceof net.Socket) stream.setNoDelay(true);
  }

  private lost(client: MqttClient, failed: string | null): void {
    const wasConnected = this.connected;
    this.session++;
    this.connected = false;
    this.client = null;
    void this.endClient(client);
    this.rewind();
    if (failed === null) {
      this.current.lastError = wasConnected
        ? 'EDGEGW_E_UPLINK_CONNECT: connection closed'
        : 'EDGEGW_E_UPLINK_CONNECT: closed before CONNACK';
    }
    if (!this.running) return;
    const delay = this.backoff.next();
    this.opts.log.warn(
      { code: this.current.lastError?.split(':')[0], reason: this.current.lastError, retryMs: delay },
      wasConnected ? 'uplink disconnected' : 'uplink connect failed',
    );
    this.setState('backoff');
    this.reconnectTimer = this.clock.setTimeout(() => this.connect(), delay);
  }

  /** Everything not acknowledged counts as not sent: pull again from the lowest unacked seq. */
  private rewind(): void {
    this.feed.rewind(this.lowestInFlight());
    this.inflight.clear();
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
    const entry: InFlight = { seqs: msg.seqs, readings: msg.readings };
    this.inflight.add(entry);
    this.opts.onMessage?.();
    client.publish(this.topic, msg.payload, { qos: 1 }, (err) => {
      if (session !== this.session || !this.inflight.has(entry)) return;
      if (err) {
        // Not acknowledged on a live session: start over on a new connection (rewinds the cursor).
        this.current.lastError = classifyError(err);
        client.end(true);
        return;
      }
      this.inflight.delete(entry);
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
      if (kept.every(Boolean)) this.opts.onDelivered?.(entry.seqs, entry.readings);
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

  private endClient(client: MqttClient): Promise<void> {
    client.on('error', () => undefined); // late socket errors after we gave up on this client
    return new Promise<void>((resolve) => {
      const timer = this.clock.setTimeout(resolve, END_TIMEOUT_MS);
      client.end(true, () => {
        this.clock.clearTimeout(timer);
        resolve();
      });
    });
  }

  private clearTimer(name: 'paceTimer' | 'reconnectTimer'): void {
    if (this[name] !== null) this.clock.clearTimeout(this[name]);
    this[name] = null;
  }

  private setState(state: UplinkStateName): void {
    if (this.current.state !== state) this.current = { ...this.current, state, since: this.clock.now() };
  }
}
