// The demo's embedded broker, also the test broker: aedes behind a TLS server that requires and
// verifies client certificates (TLS 1.2+). Each connection runs through a gate (broker-gate.ts)
// that sees the MQTT frames on the wire, so tests can count publishes, observe the client's
// in-flight window and hold or drop PUBACKs, with no change to aedes itself.
// With `iotcore`, the gate also enforces AWS IoT Core's per-connection rules (iotcore-rules.ts:
// publish rate, byte rate, in-flight, payload and topic size, connect rate) and counts what they
// discarded, delayed or refused. MQTT 5 clients are translated to the 3.1.1 aedes speaks
// (mqtt5-bridge.ts), rules or not. Not simulated: IoT Core's policies, rules engine, shadows,
// retained-message and subscription limits, persistent sessions, QoS 2 refusal.

import net from 'node:net';
import tls from 'node:tls';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { systemClock, type Clock } from '../types.js';
import type { DemoPki } from './pki.js';
import { Gate, type AckMode, type BrokerCounts } from './broker-gate.js';
import {
  ConnectRegistry,
  newRuleCounts,
  resolveRules,
  type IotCoreRules,
  type RuleCounts,
} from './iotcore-rules.js';
import { MQTT5_DEFAULTS, type Mqtt5Options } from './mqtt5-bridge.js';

export type { BrokerCounts } from './broker-gate.js';
export { IOT_CORE_RULES, type IotCoreRules, type RuleCounts } from './iotcore-rules.js';
export { REASON } from './mqtt5-bridge.js';

export interface BrokerOptions {
  pki: DemoPki;
  host?: string;
  port?: number;
  requireClientCert?: boolean;
  minVersion?: tls.SecureVersion;
  maxVersion?: tls.SecureVersion;
  /** Cipher list override (OpenSSL syntax), e.g. to offer legacy protocols in negative tests. */
  ciphers?: string;
  /**
   * Called synchronously for each QoS 1 publish just before its PUBACK is written to the client:
   * what the broker acknowledged, in order (the chaos suite's record of what was delivered).
   */
  onAcked?: (topic: string, payload: Buffer) => void;
  /**
   * Called with the frame size of each client PUBLISH as the broker reads it off the socket, before
   * the IoT Core rules delay or discard it: where IoT Core counts a connection's bytes per second.
   */
  onPublishRead?: (frameBytes: number) => void;
  /** IoT Core's per-connection rules: `true` for IoT Core's numbers, or some of them overridden. Off when absent. */
  iotcore?: Partial<IotCoreRules> | true;
  /** What the CONNACK to an MQTT 5 client advertises. */
  mqtt5?: Partial<Mqtt5Options>;
  /** Times the rules' windows (monotonic) and delays; the system clock by default. */
  clock?: Clock;
}

/** One open client connection, as its CONNECT named it (null before CONNECT). */
export interface BrokerClient {
  clientId: string | null;
  protocol: 4 | 5 | null;
  outstanding: number;
}

export interface TlsBroker {
  port: number;
  url: string;
  aedes: Aedes;
  published: BrokerCounts;
  /** What IoT Core's rules discarded, delayed and refused (all zero when they are off). */
  rules: RuleCounts;
  /** Unacknowledged QoS 1 publishes per open connection, now. */
  outstanding(): number[];
  clients(): BrokerClient[];
  /**
   * Hold PUBACKs (they are sent on resumeAcks) or drop them for good. With `topics`, only those of
   * publishes to a topic it accepts (e.g. the data while jobs go on); from publishes after the call.
   */
  pauseAcks(topics?: (topic: string) => boolean): void;
  dropAcks(): void;
  /** Drop one PUBACK in `n` for good (every n-th on each connection); resumeAcks ends it. */
  dropEveryNthAck(n: number): void;
  resumeAcks(): void;
  /** Destroys every client connection but this broker's own subscribers (a network cut). */
  dropConnections(): void;
  /**
   * The uplink is cut: client connections (but this broker's own subscribers) are dropped, and
   * new ones are accepted and destroyed at once, so clients see a connect failure, until restore().
   */
  cut(): void;
  restore(): void;
  readonly isCut: boolean;
  /**
   * A server-side DISCONNECT: MQTT 5 clients get one with `reasonCode` (e.g. 0x97), then every
   * matching client connection (all but subscribers, or the one `clientId`) is closed. Returns how many.
   */
  disconnectClients(reasonCode: number, clientId?: string): number;
  /**
   * Client certificates the broker hangs up on right after the TLS handshake, as IoT Core does for
   * a certificate that is not ACTIVE: `test` sees each verified peer certificate (null: accept all).
   */
  refuseClients(test: ((cert: tls.PeerCertificate) => boolean) | null): void;
  subscribe(topic: string, onMessage: (payload: Buffer, topic: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

const SUBSCRIBER_PREFIX = 'edgegw-demo-subscriber-';

function isSubscriber(g: Gate): boolean {
  return g.clientId?.startsWith(SUBSCRIBER_PREFIX) ?? false;
}

export async function startTlsBroker(opts: BrokerOptions): Promise<TlsBroker> {
  const host = opts.host ?? '127.0.0.1';
  const aedes = await Aedes.createBroker();
  const counts: BrokerCounts = {
    messages: 0,
    bytes: 0,
    acksSent: 0,
    maxOutstanding: 0,
    connections: 0,
    refusedWhileCut: 0,
  };
  const clock = opts.clock ?? systemClock;
  const rules = resolveRules(opts.iotcore);
  const ruleCounts = newRuleCounts();
  const ctx = {
    counts,
    rules,
    ruleCounts,
    connects: rules === null ? null : new ConnectRegistry(rules, clock),
    mqtt5: { ...MQTT5_DEFAULTS, ...opts.mqtt5 },
    clock,
    mode: () => ackMode,
    ...(opts.onAcked === undefined ? {} : { onAcked: opts.onAcked }),
    ...(opts.onPublishRead === undefined ? {} : { onPublishRead: opts.onPublishRead }),
  };
  let ackMode: AckMode = 'pass';
  let isCut = false;
  const gates = new Set<Gate>();
  let refuse: ((cert: tls.PeerCertificate) => boolean) | null = null;
  const server = tls.createServer(
    {
      ca: opts.pki.caCert,
      cert: opts.pki.serverCert,
      key: opts.pki.serverKey,
      requestCert: opts.requireClientCert ?? true,
      rejectUnauthorized: opts.requireClientCert ?? true,
      minVersion: opts.minVersion ?? 'TLSv1.2',
      ...(opts.maxVersion === undefined ? {} : { maxVersion: opts.maxVersion }),
      ...(opts.ciphers === undefined ? {} : { ciphers: opts.ciphers }),
    },
    (socket) => {
      if (refuse?.(socket.getPeerCertificate()) === true) {
        socket.destroy();
        return;
      }
      counts.connections++;
      const g = new Gate(socket, ctx);
      gates.add(g);
      socket.on('close', () => gates.delete(g));
      g.attach();
      aedes.handle(g.stream);
    },
  );
  // While cut, a TCP connection is accepted and destroyed before TLS: the client's connect fails.
  server.prependListener('connection', (raw: net.Socket) => {
    if (!isCut) return;
    counts.refusedWhileCut++;
    raw.destroy();
  });
  // A failed handshake is the client's problem; the broker keeps serving.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  const subscribers = new Set<mqtt.MqttClient>();

  const releaseHeld = (send: boolean): void => {
    for (const g of gates) g.releaseHeld(send);
  };
  const dropConnections = (): void => {
    for (const g of gates) if (!isSubscriber(g)) g.socket.destroy();
  };

  return {
    port,
    url: `mqtts://localhost:${port}`,
    aedes,
    published: counts,
    rules: ruleCounts,
    outstanding: () => [...gates].map((g) => g.outstanding),
    clients: () =>
      [...gates].map((g) => ({ clientId: g.clientId, protocol: g.protocol, outstanding: g.outstanding })),
    pauseAcks: (topics) => {
      ackMode = topics === undefined ? 'hold' : { holdTopics: topics };
    },
    dropAcks: () => {
      ackMode = 'drop';
      releaseHeld(false);
    },
    dropEveryNthAck: (n) => {
      if (!(Number.isInteger(n) && n >= 1)) throw new RangeError('dropEveryNthAck needs an integer n >= 1');
      ackMode = { dropEvery: n };
      releaseHeld(true);
    },
    resumeAcks: () => {
      ackMode = 'pass';
      releaseHeld(true);
    },
    dropConnections,
    cut: () => {
      isCut = true;
      dropConnections();
    },
    restore: () => {
      isCut = false;
    },
    get isCut() {
      return isCut;
    },
    disconnectClients: (reasonCode, clientId) => {
      const hit = [...gates].filter((g) =>
        clientId === undefined ? !isSubscriber(g) : g.clientId === clientId,
      );
      for (const g of hit) g.disconnect(reasonCode);
      return hit.length;
    },
    refuseClients: (test) => {
      refuse = test;
    },
    subscribe: async (topic, onMessage) => {
      const client = mqtt.connect(`mqtts://localhost:${port}`, {
        ca: opts.pki.caCert,
        cert: opts.pki.clientCert,
        key: opts.pki.clientKey,
        clientId: `${SUBSCRIBER_PREFIX}${Math.random().toString(16).slice(2, 10)}`,
        rejectUnauthorized: true,
        reconnectPeriod: 200,
        protocolVersion: 4,
      });
      subscribers.add(client);
      client.on('message', (t, payload) => onMessage(payload, t));
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve());
        client.once('error', reject);
      });
      await client.subscribeAsync(topic, { qos: 1 });
      return async () => {
        subscribers.delete(client);
        await client.endAsync(true);
      };
    },
    close: async () => {
      for (const c of subscribers) await c.endAsync(true);
      subscribers.clear();
      for (const g of gates) g.socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    },
  };
}
