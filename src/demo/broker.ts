// The demo's embedded broker, also the test broker: aedes behind a TLS server that requires and
// verifies client certificates (TLS 1.2+). Each connection runs through a small gate that sees the
// MQTT frames on the wire, so tests can count publishes, observe the client's in-flight window
// and hold or drop PUBACKs, with no change to aedes itself.

import { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import type { DemoPki } from './pki.js';

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
}

/** What clients published, counted on the wire. `maxOutstanding`: most unacknowledged QoS 1 publishes one connection ever had. */
export interface BrokerCounts {
  messages: number;
  bytes: number;
  acksSent: number;
  maxOutstanding: number;
  connections: number;
}

export interface TlsBroker {
  port: number;
  url: string;
  aedes: Aedes;
  published: BrokerCounts;
  /** Unacknowledged QoS 1 publishes per open connection, now. */
  outstanding(): number[];
  /** Hold PUBACKs (they are sent on resumeAcks) or drop them for good. */
  pauseAcks(): void;
  dropAcks(): void;
  /** Drop one PUBACK in `n` for good (every n-th on each connection); resumeAcks ends it. */
  dropEveryNthAck(n: number): void;
  resumeAcks(): void;
  /** Destroys every client connection but this broker's own subscribers (a network cut). */
  dropConnections(): void;
  subscribe(topic: string, onMessage: (payload: Buffer, topic: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

type AckMode = 'pass' | 'hold' | 'drop' | { dropEvery: number };

const PUBLISH = 3;
const SUBSCRIBER_PREFIX = 'edgegw-demo-subscriber-';
const PUBACK = 4;

/** Splits a byte stream into whole MQTT frames (fixed header + remaining length). */
class FrameSplitter {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const frames: Buffer[] = [];
    for (;;) {
      let len = 0;
      let mul = 1;
      let i = 1;
      let complete = false;
      while (i < this.buf.length && i <= 4) {
        const b = this.buf[i]!;
        len += (b & 0x7f) * mul;
        mul *= 128;
        i++;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete || this.buf.length < i + len) return frames;
      frames.push(this.buf.subarray(0, i + len));
      this.buf = this.buf.subarray(i + len);
    }
  }
}

interface Gate {
  stream: Duplex;
  socket: tls.TLSSocket;
  outstanding: number;
  held: Buffer[];
  /** QoS 1 publishes by packet id, until their PUBACK passes (only kept with an onAcked hook). */
  unacked: Map<number, { topic: string; payload: Buffer }>;
  /** PUBACKs the broker produced on this connection (for dropEvery). */
  acks: number;
  /** A PUBACK frame is about to reach the client: tell onAcked. */
  acked(f: Buffer): void;
}

type AckedHook = (topic: string, payload: Buffer) => void;

/** Topic, packet id and payload of an MQTT 3.1.1 PUBLISH frame with QoS > 0. */
function parsePublish(f: Buffer): { topic: string; id: number; payload: Buffer } | null {
  let i = 1;
  while (i < f.length && (f[i]! & 0x80) !== 0) i++;
  i++;
  if (i + 2 > f.length) return null;
  const topicLen = f.readUInt16BE(i);
  const topic = f.subarray(i + 2, i + 2 + topicLen).toString('utf8');
  const idAt = i + 2 + topicLen;
  if (idAt + 2 > f.length) return null;
  return { topic, id: f.readUInt16BE(idAt), payload: f.subarray(idAt + 2) };
}

/** The packet id of a PUBACK frame. */
function pubackId(f: Buffer): number {
  return f.length >= 4 ? f.readUInt16BE(2) : -1;
}

function gate(socket: tls.TLSSocket, counts: BrokerCounts, mode: () => AckMode, onAcked?: AckedHook): Gate {
  const inbound = new FrameSplitter();
  const outbound = new FrameSplitter();
  const g: Gate = {
    socket,
    outstanding: 0,
    held: [],
    unacked: new Map(),
    acks: 0,
    stream: null as unknown as Duplex,
    acked: (f) => {
      const id = pubackId(f);
      const pub = g.unacked.get(id);
      if (pub === undefined) return;
      g.unacked.delete(id);
      onAcked?.(pub.topic, pub.payload);
    },
  };
  g.stream = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      const pass: Buffer[] = [];
      for (const f of outbound.push(chunk)) {
        if (f[0]! >> 4 === PUBACK) {
          const m = mode();
          g.acks++;
          if (m === 'drop' || (typeof m === 'object' && g.acks % m.dropEvery === 0)) {
            g.unacked.delete(pubackId(f));
            continue;
          }
          if (m === 'hold') {
            g.held.push(f);
            continue;
          }
          g.outstanding--;
          counts.acksSent++;
          g.acked(f);
        }
        pass.push(f);
      }
      if (pass.length === 0 || socket.destroyed) return cb();
      socket.write(Buffer.concat(pass), () => cb());
    },
    final(cb) {
      socket.end();
      cb();
    },
    destroy(err, cb) {
      socket.destroy();
      cb(err);
    },
  });
  socket.on('data', (chunk: Buffer) => {
    for (const f of inbound.push(chunk)) {
      if (f[0]! >> 4 === PUBLISH && ((f[0]! >> 1) & 3) > 0) {
        counts.messages++;
        counts.bytes += f.length;
        g.outstanding++;
        counts.maxOutstanding = Math.max(counts.maxOutstanding, g.outstanding);
        const pub = onAcked === undefined ? null : parsePublish(f);
        if (pub !== null) g.unacked.set(pub.id, { topic: pub.topic, payload: Buffer.from(pub.payload) });
      }
    }
    if (!g.stream.push(chunk)) socket.pause();
  });
  socket.on('end', () => g.stream.push(null));
  socket.on('error', () => g.stream.destroy());
  socket.on('close', () => g.stream.destroy());
  return g;
}

/** aedes sets `conn.client` on the stream it handles. */
function isSubscriber(g: Gate): boolean {
  const client = (g.stream as Duplex & { client?: { id?: string } }).client;
  return client?.id?.startsWith(SUBSCRIBER_PREFIX) ?? false;
}

export async function startTlsBroker(opts: BrokerOptions): Promise<TlsBroker> {
  const host = opts.host ?? '127.0.0.1';
  const aedes = await Aedes.createBroker();
  const counts: BrokerCounts = { messages: 0, bytes: 0, acksSent: 0, maxOutstanding: 0, connections: 0 };
  let ackMode: AckMode = 'pass';
  const gates = new Set<Gate>();
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
      counts.connections++;
      const g = gate(socket, counts, () => ackMode, opts.onAcked);
      gates.add(g);
      socket.on('close', () => gates.delete(g));
      aedes.handle(g.stream);
    },
  );
  // A failed handshake is the client's problem; the broker keeps serving.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const subscribers = new Set<mqtt.MqttClient>();

  const releaseHeld = (send: boolean): void => {
    for (const g of gates) {
      const frames = g.held.splice(0);
      if (!send || frames.length === 0 || g.socket.destroyed) continue;
      g.outstanding -= frames.length;
      counts.acksSent += frames.length;
      for (const f of frames) g.acked(f);
      g.socket.write(Buffer.concat(frames));
    }
  };

  return {
    port,
    url: `mqtts://localhost:${port}`,
    aedes,
    published: counts,
    outstanding: () => [...gates].map((g) => g.outstanding),
    pauseAcks: () => {
      ackMode = 'hold';
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
    dropConnections: () => {
      for (const g of gates) if (!isSubscriber(g)) g.socket.destroy();
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
