// A stand-in for an mqtt.js client behind the uplink's ConnectFn seam, so the session and the pump
// can be driven under the fake clock: the test decides when CONNACK, PUBACK, errors and closes
// happen. Only what the uplink calls exists. The real client is covered by the integration tests
// against the real TLS broker.

import { EventEmitter } from 'node:events';
import type { IClientOptions, IConnackPacket, MqttClient } from 'mqtt';

export interface FakePublish {
  topic: string;
  payload: Buffer;
  opts: { qos: number; properties?: Record<string, unknown> };
  cb: (err?: Error) => void;
}

export class FakeMqtt extends EventEmitter {
  readonly published: FakePublish[] = [];
  ended = false;
  constructor(readonly options: IClientOptions) {
    super();
  }

  publish(topic: string, payload: Buffer, opts: FakePublish['opts'], cb: FakePublish['cb']): this {
    this.published.push({ topic, payload, opts, cb });
    return this;
  }

  end(_force?: boolean, cb?: () => void): this {
    if (!this.ended) {
      this.ended = true;
      queueMicrotask(() => this.emit('close'));
    }
    cb?.();
    return this;
  }

  /** The broker's CONNACK, with MQTT 5 properties if given. */
  connack(properties?: IConnackPacket['properties']): void {
    this.emit('connect', {
      cmd: 'connack',
      returnCode: 0,
      sessionPresent: false,
      ...(properties ? { properties } : {}),
    });
  }

  /** The broker acknowledges the `i`-th publish (reasonCode ≥ 0x80: refused, as mqtt.js reports it). */
  ack(i: number, reasonCode = 0): void {
    const p = this.published[i]!;
    if (reasonCode >= 0x80) {
      const err = Object.assign(new Error(`Publish error: ${reasonCode}`), { code: reasonCode });
      p.cb(err);
    } else p.cb();
  }

  /** The connection fails (an error, then the close mqtt.js emits). */
  fail(err: Error): void {
    this.emit('error', err);
    this.ended = true;
    this.emit('close');
  }
}

/** A ConnectFn that records every client it makes. */
export function fakeConnect(): { clients: FakeMqtt[]; connect: (o: IClientOptions) => MqttClient } {
  const clients: FakeMqtt[] = [];
  return {
    clients,
    connect: (o) => {
      const c = new FakeMqtt(o);
      clients.push(c);
      return c as unknown as MqttClient;
    },
  };
}
