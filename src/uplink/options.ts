// What the uplink is given and what it reports (`edgegw status` shows UplinkState as `uplink`).

import type { Logger } from 'pino';
import type { Clock, RecordSource } from '../types.js';
import type { BackoffOptions } from './backoff.js';
import type { CertificateInfo } from './certificate.js';
import type { Compression } from './wire.js';
import type { UplinkPace, UplinkThroughput } from '../types.js';

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
  /** MQTT protocol version (uplink.protocol; default 3.1.1). */
  protocol?: '3.1.1' | '5';
  limits: UplinkLimits;
  /** `deflate`: each payload is a zlib stream of the JSON, sized by its compressed bytes (wire.ts). */
  compression?: Compression;
  /** Longest wait for a PUBACK before the uplink reconnects and resends (DEFAULT_ACK_TIMEOUT_MS). */
  ackTimeoutMs?: number;
  /** `random` is for tests. */
  backoff: BackoffOptions;
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
  /** What was sent: totals and recent rates (status shows them against `limits`). */
  throughput?: UplinkThroughput;
  limits?: Pick<UplinkLimits, 'publishesPerSecond' | 'bytesPerSecond'>;
  /** The device certificate's validity; null when it does not parse. */
  certificate?: CertificateInfo | null;
  protocol?: '3.1.1' | '5';
  /** The adaptive pace: the rates paced to now, as a share of the limits, and why it is lower. */
  pace?: UplinkPace;
}

/** What a reload changes for the uplink: its connection, or only the pacing and packing. */
export function settingsChange(
  prev: UplinkOptions,
  next: Pick<
    UplinkOptions,
    'url' | 'alpn' | 'keepaliveMs' | 'tls' | 'topic' | 'limits' | 'protocol' | 'compression'
  >,
): { reconnect: boolean; retune: boolean } {
  return {
    reconnect:
      prev.url !== next.url ||
      prev.alpn !== next.alpn ||
      prev.keepaliveMs !== next.keepaliveMs ||
      (prev.protocol ?? '3.1.1') !== (next.protocol ?? '3.1.1') ||
      !sameTls(prev.tls, next.tls),
    retune:
      prev.topic !== next.topic ||
      (prev.compression ?? 'none') !== (next.compression ?? 'none') ||
      !sameLimits(prev.limits, next.limits),
  };
}

function sameTls(a: UplinkOptions['tls'], b: UplinkOptions['tls']): boolean {
  const same = (x: Buffer | string, y: Buffer | string) => Buffer.from(x).equals(Buffer.from(y));
  return same(a.ca, b.ca) && same(a.cert, b.cert) && same(a.key, b.key);
}

function sameLimits(a: UplinkLimits, b: UplinkLimits): boolean {
  return (
    a.publishesPerSecond === b.publishesPerSecond &&
    a.bytesPerSecond === b.bytesPerSecond &&
    a.maxPayloadBytes === b.maxPayloadBytes &&
    a.inflight === b.inflight
  );
}
