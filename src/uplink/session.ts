// The uplink's connection (DESIGN.md §2.4, §8): one fresh mqtt.js client per attempt (mqtt.js does
// no reconnects of its own here), backoff between attempts that restarts only once a connection
// proved stable (link-health.ts), takeover detection, and the reason every connection ended, for
// `status.uplink.lastError`. Callbacks of an older connection are ignored: each attempt gets a new
// `id`, which the pump also checks before it touches the in-flight window.

import mqtt, {
  type IClientOptions,
  type IConnackPacket,
  type IDisconnectPacket,
  type MqttClient,
} from 'mqtt';
import type { Logger } from 'pino';
import type { ErrorCode } from '../errors.js';
import type { Clock } from '../types.js';
import type { Backoff } from './backoff.js';
import { CONNECT_TIMEOUT_MS, endClient, noDelay, watchHandshake } from './client.js';
import { FailureLatch, classifyError, describeClosedBeforeConnack, describeDisconnect } from './errors.js';
import { LinkHealth, MIN_STABLE_MS } from './link-health.js';
import type { UplinkStateName } from './options.js';

/** How a connection is made: mqtt.connect, or a test's client (the seam the unit tests use). */
export type ConnectFn = (options: IClientOptions) => MqttClient;

export interface SessionHooks {
  /** A connection attempt starts (the feed splits live from backlog here). */
  attempt(): void;
  /** CONNACK: publishing may start on `client`. */
  up(client: MqttClient, connack: IConnackPacket): void;
  /**
   * The connection (or the attempt) ended; everything in flight counts as unsent. `closedByBroker`:
   * it had a CONNACK and we did not end it ourselves.
   */
  down(closedByBroker: boolean): void;
  /** The state name changed (status `since`). */
  state(name: UplinkStateName): void;
  /** A connection error (for the certificate watch): the error and its lastError text. */
  failed?(err: Error, text: string): void;
}

export interface SessionOptions {
  clock: Clock;
  log: Logger;
  backoff: Backoff;
  keepaliveMs: number;
  connect?: ConnectFn;
}

export class Session {
  private readonly clock: Clock;
  private readonly connectFn: ConnectFn;
  private health: LinkHealth;
  private client: MqttClient | null = null;
  private gen = 0;
  private up = false;
  /** Why we ended the current connection ourselves (a stall, a failed publish); null if we did not. */
  private ending: string | null = null;
  private running = false;
  private reconnectTimer: unknown = null;
  private reconnectDue = 0;
  private enteredAt = 0;
  private name: UplinkStateName = 'offline';
  /** One warning per failure class; retries of the same class log at debug. */
  private readonly latch = new FailureLatch();
  /** Host of uplink.url (the error texts name it). */
  host = '';
  lastError: string | null = null;
  /** The broker this session connects to (`host:port`, for logs). */
  broker = '';

  constructor(
    private readonly opts: SessionOptions,
    private readonly options: () => IClientOptions,
    private readonly hooks: SessionHooks,
  ) {
    this.clock = opts.clock;
    this.connectFn = opts.connect ?? ((o) => mqtt.connect(o));
    this.health = this.newHealth(opts.keepaliveMs);
  }

  /** Bumped at every attempt and at stop: a callback holding an older id is stale. */
  get id(): number {
    return this.gen;
  }

  get connected(): boolean {
    return this.up;
  }

  get state(): UplinkStateName {
    return this.name;
  }

  /** The current client while connected (null otherwise). */
  get current(): MqttClient | null {
    return this.up ? this.client : null;
  }

  /** When the state machine must next move: the connect timeout, or the reconnect timer. */
  due(): { due: number; what: string } | null {
    if (this.name === 'connecting')
      return { due: this.enteredAt + CONNECT_TIMEOUT_MS, what: 'CONNACK or connect timeout' };
    if (this.name === 'backoff') return { due: this.reconnectDue, what: 'reconnect timer' };
    return null;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  /** A new keep-alive (a reload): the stable-connection timer follows it. */
  retune(keepaliveMs: number): void {
    this.health.cancel();
    this.health = this.newHealth(keepaliveMs);
  }

  /** Ends the current connection (or attempt) and connects again now, without a backoff delay. */
  restart(): void {
    const client = this.client;
    this.gen++;
    this.client = null;
    this.up = false;
    this.clearReconnect();
    if (client) void endClient(client, this.clock);
    this.hooks.down(false);
    this.opts.log.info({ broker: this.broker }, 'uplink reconnecting with the reloaded settings');
    this.connect();
  }

  /** Ends the connection ourselves (its close then reconnects); the first reason given stays. */
  abort(reason: string): void {
    const client = this.client;
    if (client === null || this.ending !== null) return;
    this.ending = reason;
    this.lastError = reason;
    client.end(true);
  }

  /** No more connection attempts (a stop has begun); the current connection stays. */
  quiesce(): void {
    this.running = false;
    this.clearReconnect();
  }

  /** Stops reconnecting and ends the connection, waiting at most a second for mqtt.js. */
  async stop(): Promise<void> {
    this.quiesce();
    this.health.cancel();
    const client = this.client;
    this.gen++;
    this.client = null;
    this.up = false;
    if (client) await endClient(client, this.clock);
    this.setState('offline');
  }

  private newHealth(keepaliveMs: number): LinkHealth {
    return new LinkHealth(this.clock, this.opts.backoff, Math.max(MIN_STABLE_MS, keepaliveMs));
  }

  private connect(): void {
    this.reconnectTimer = null;
    if (!this.running) return;
    const gen = ++this.gen;
    this.ending = null;
    this.hooks.attempt();
    this.setState('connecting');
    const client = this.connectFn(this.options());
    this.client = client;
    noDelay(client);
    const secured = watchHandshake(client);
    let failed: string | null = null;
    client.on('connect', (connack: IConnackPacket) => {
      if (gen !== this.gen) return;
      noDelay(client);
      this.up = true;
      this.latch.reset();
      this.health.connected();
      this.setState('connected');
      this.opts.log.info({ broker: this.broker }, 'uplink connected');
      this.hooks.up(client, connack);
    });
    client.on('error', (err: Error) => {
      if (gen !== this.gen || this.ending !== null) return;
      failed = classifyError(err, { now: this.clock.now(), host: this.host, broker: this.broker });
      this.lastError = failed;
      this.hooks.failed?.(err, failed);
    });
    // MQTT 5: the broker says why it ends the connection before it closes it.
    client.on('disconnect', (packet: IDisconnectPacket) => {
      if (gen !== this.gen || this.ending !== null) return;
      failed = describeDisconnect(packet.reasonCode ?? 0).text;
      this.lastError = failed;
    });
    client.on('close', () => {
      if (gen !== this.gen) return;
      this.lost(client, failed, secured());
    });
  }

  private lost(client: MqttClient, failed: string | null, secured: boolean): void {
    const wasConnected = this.up;
    const ending = this.ending;
    this.gen++;
    this.up = false;
    this.client = null;
    void endClient(client, this.clock);
    if (failed === null && ending === null) {
      this.lastError = wasConnected
        ? 'EDGEGW_E_UPLINK_CONNECT: connection closed'
        : describeClosedBeforeConnack(secured).text;
    }
    const byBroker = wasConnected && ending === null;
    const closed = this.health.closed(byBroker);
    if (closed.takeover) {
      this.lastError =
        `EDGEGW_E_UPLINK_TAKEOVER: the broker closed ${closed.shortLived} connections in a row soon after ` +
        'CONNACK; another client may be using this gateway id';
    }
    this.hooks.down(byBroker);
    if (!this.running) return;
    const code = this.lastError?.split(':')[0] ?? 'EDGEGW_E_UPLINK_CONNECT';
    const news = wasConnected || this.latch.changed(code as ErrorCode);
    this.opts.log[news ? 'warn' : 'debug'](
      {
        code,
        reason: this.lastError,
        retryMs: closed.delayMs,
        ...(closed.shortLived > 0 ? { shortLived: closed.shortLived } : {}),
      },
      wasConnected ? 'uplink disconnected' : 'uplink connect failed',
    );
    this.setState('backoff');
    this.reconnectDue = this.clock.monotonic() + closed.delayMs;
    this.reconnectTimer = this.clock.setTimeout(() => this.connect(), closed.delayMs);
  }

  private clearReconnect(): void {
    if (this.reconnectTimer !== null) this.clock.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }

  private setState(name: UplinkStateName): void {
    if (this.name === name) return;
    this.name = name;
    this.enteredAt = this.clock.monotonic();
    this.hooks.state(name);
  }
}
