// The control channel: request/response topic protocols (Device Shadow, Jobs, fleet provisioning,
// Defender; ../shared/IOTCORE-APIS.md) spoken on the uplink's own MQTT connection, beside the
// telemetry. Each connection is a fresh client with a clean session, so the channel subscribes
// its topics again on every CONNACK, and only then tells its users the link is up: AWS asks that
// the response topics be subscribed before a request is published. Control publishes bypass the
// telemetry pacer; they are a handful a minute, well inside the quota's headroom.

import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { EdgegwError } from '../errors.js';

export type ControlHandler = (topic: string, payload: Buffer) => void;

/** What the fleet and identity features see of the uplink's connection. */
export interface Control {
  /** True between a connection's subscriptions being in place and its end. */
  readonly connected: boolean;
  /** Adds topic filters, kept on every later connection; subscribes now when connected. */
  subscribe(filters: string[]): Promise<void>;
  /** Removes topic filters (and unsubscribes now when connected). */
  unsubscribe(filters: string[]): Promise<void>;
  /** QoS 1 by default; resolves on PUBACK, rejects when not connected or the connection ends first. */
  publish(topic: string, payload: string | Buffer, qos?: 0 | 1): Promise<void>;
  /** Every message that arrives on the connection; returns the removal. */
  onMessage(handler: ControlHandler): () => void;
  /** Each time a connection is up with the subscriptions in place; returns the removal. */
  onUp(handler: () => void): () => void;
}

export class ControlChannel implements Control {
  private client: MqttClient | null = null;
  private ready = false;
  private readonly filters = new Set<string>();
  private readonly handlers = new Set<ControlHandler>();
  private readonly ups = new Set<() => void>();
  private readonly listener = (topic: string, payload: Buffer): void => {
    for (const h of [...this.handlers]) {
      try {
        h(topic, payload);
      } catch (err) {
        this.log.warn({ err: (err as Error).message, topic }, 'control message handler failed');
      }
    }
  };

  constructor(private readonly log: Logger) {}

  get connected(): boolean {
    return this.ready && this.client !== null;
  }

  /** A CONNACK on `client`: subscribe what is wanted, then announce the link. */
  attach(client: MqttClient): void {
    this.detach();
    this.client = client;
    client.on('message', this.listener);
    const filters = [...this.filters];
    const subscribed = filters.length === 0 ? Promise.resolve() : this.subscribeOn(client, filters);
    subscribed.then(
      () => {
        if (this.client !== client) return;
        this.ready = true;
        for (const up of [...this.ups]) up();
      },
      (err: unknown) => {
        // The connection is likely going down; the next CONNACK tries again.
        if (this.client === client) {
          this.log.warn({ err: (err as Error).message }, 'control subscriptions failed');
        }
      },
    );
  }

  /** The connection ended. */
  detach(): void {
    this.client?.off('message', this.listener);
    this.client = null;
    this.ready = false;
  }

  async subscribe(filters: string[]): Promise<void> {
    const added = filters.filter((f) => !this.filters.has(f));
    for (const f of added) this.filters.add(f);
    const client = this.client;
    if (client !== null && added.length > 0) await this.subscribeOn(client, added);
  }

  async unsubscribe(filters: string[]): Promise<void> {
    const removed = filters.filter((f) => this.filters.delete(f));
    const client = this.client;
    if (client !== null && removed.length > 0) await client.unsubscribeAsync(removed);
  }

  async publish(topic: string, payload: string | Buffer, qos: 0 | 1 = 1): Promise<void> {
    const client = this.client;
    if (client === null || !this.ready) {
      throw new EdgegwError('EDGEGW_E_UPLINK_DISCONNECTED', `not connected: cannot publish to ${topic}`);
    }
    await client.publishAsync(topic, payload, { qos });
  }

  onMessage(handler: ControlHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  onUp(handler: () => void): () => void {
    this.ups.add(handler);
    return () => this.ups.delete(handler);
  }

  private async subscribeOn(client: MqttClient, filters: string[]): Promise<void> {
    // IoT Core takes at most 8 filters per SUBSCRIBE.
    for (let i = 0; i < filters.length; i += 8) {
      const granted = await client.subscribeAsync(filters.slice(i, i + 8), { qos: 1 });
      const refused = granted.filter((g) => g.qos === 128).map((g) => g.topic);
      if (refused.length > 0) {
        throw new EdgegwError(
          'EDGEGW_E_UPLINK_REFUSED',
          `the broker refused the subscription to ${refused.join(', ')}`,
        );
      }
    }
  }
}
