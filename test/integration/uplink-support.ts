// Shared set-up of the uplink integration tests: an Uplink against a TLS broker.

import { pino } from 'pino';
import type { DemoPki } from '../../src/demo/pki.js';
import type { TlsBroker } from '../../src/demo/broker.js';
import { Uplink, type UplinkOptions } from '../../src/uplink/uplink.js';
import type { RecordSource } from '../../src/types.js';

export const GW = 'test-gw1';
export const TOPIC = `dt/edgegw/${GW}/telemetry`;

export function makeUplink(
  broker: { url: string },
  pki: DemoPki,
  source: RecordSource,
  over: Partial<UplinkOptions> = {},
): Uplink {
  return new Uplink({
    gatewayId: GW,
    url: broker.url,
    topic: 'dt/edgegw/{gateway}/telemetry',
    keepaliveMs: 30_000,
    limits: {
      publishesPerSecond: 10_000,
      bytesPerSecond: 100 * 1024 * 1024,
      maxPayloadBytes: 4096,
      inflight: 8,
    },
    backoff: { minMs: 50, maxMs: 300 },
    tls: { ca: Buffer.from(pki.caCert), cert: Buffer.from(pki.clientCert), key: Buffer.from(pki.clientKey) },
    source,
    log: pino({ level: 'silent' }),
    ...over,
  });
}

/** Seqs of every message the gateway published, as the broker saw them (duplicates kept). */
export function recordPublishes(
  broker: TlsBroker,
  into: { seqs: number[]; at: number[]; bytes: number[] },
): void {
  broker.aedes.on('publish', (packet, client) => {
    if (client?.id !== GW) return;
    const m = JSON.parse(packet.payload.toString()) as { recs: { seq: number }[] };
    for (const r of m.recs) into.seqs.push(r.seq);
    into.at.push(Date.now());
    into.bytes.push(packet.payload.length);
  });
}
