// One mqtt.js client as the uplink uses it (DESIGN.md §2.4, §8): the connect options (MQTT 3.1.1
// or 5, clean session, TLS 1.2+ with SNI, no reconnects of its own: the uplink owns reconnects and
// backoff), TCP_NODELAY, and a bounded end.

import net from 'node:net';
import tls from 'node:tls';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { Clock } from '../types.js';

export const CONNECT_TIMEOUT_MS = 10_000;
const END_TIMEOUT_MS = 1_000;

export interface ClientSettings {
  gatewayId: string;
  keepaliveMs: number;
  alpn?: string;
  /** MQTT protocol version (default 3.1.1). */
  protocol?: '3.1.1' | '5';
  tls: { ca: Buffer | string; cert: Buffer | string; key: Buffer | string };
}

export function clientOptions(
  host: string,
  port: number,
  { tls, alpn, gatewayId, keepaliveMs, protocol }: ClientSettings,
): IClientOptions & { minVersion: 'TLSv1.2' } {
  return {
    protocol: 'mqtts',
    host,
    port,
    protocolVersion: protocol === '5' ? 5 : 4,
    clientId: gatewayId,
    clean: true,
    // MQTT 5: the session ends with the connection; the queue, not the broker, holds what is unacknowledged.
    ...(protocol === '5' ? { properties: { sessionExpiryInterval: 0 } } : {}),
    keepalive: Math.max(1, Math.round(keepaliveMs / 1000)),
    reconnectPeriod: 0,
    connectTimeout: CONNECT_TIMEOUT_MS,
    resubscribe: false,
    queueQoSZero: false,
    // mqtt-packet otherwise builds, on its first write, a 2-byte Buffer for each of the 65,536
    // 16-bit numbers and keeps them: ~6 MiB of heap to save one tiny allocation per packet id.
    writeCache: false,
    ca: tls.ca,
    cert: tls.cert,
    key: tls.key,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    // SNI always (IoT Core needs it); TLS forbids an IP address as a server name.
    ...(net.isIP(host) === 0 ? { servername: host } : {}),
    ...(alpn === undefined ? {} : { ALPNProtocols: [alpn] }),
  };
}

/** mqtt.js never sets TCP_NODELAY; small QoS 1 publishes over TLS stall without it (DESIGN.md §8). */
export function noDelay(client: MqttClient): void {
  const stream: unknown = client.stream;
  if (stream instanceof net.Socket) stream.setNoDelay(true);
}

/**
 * Whether this client's TLS handshake has completed: a connection that then closes without a
 * CONNACK was refused by a broker that verified against uplink.ca (errors.ts,
 * describeClosedBeforeConnack). mqtt.js builds its stream in connect(), so call this right after.
 */
export function watchHandshake(client: MqttClient): () => boolean {
  let secured = false;
  const stream: unknown = client.stream;
  if (stream instanceof tls.TLSSocket) stream.once('secureConnect', () => (secured = true));
  return () => secured;
}

/** Ends the client at once, waiting at most END_TIMEOUT_MS for it to say so. */
export function endClient(client: MqttClient, clock: Clock): Promise<void> {
  client.on('error', () => undefined); // late socket errors after we gave up on this client
  return new Promise<void>((resolve) => {
    const timer = clock.setTimeout(resolve, END_TIMEOUT_MS);
    client.end(true, () => {
      clock.clearTimeout(timer);
      resolve();
    });
  });
}
