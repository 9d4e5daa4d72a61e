// What the uplink is given and what it reports (`edgegw status` shows UplinkState as `uplink`).

import type { Logger } from 'pino';
import type { Clock, RecordSource } from '../types.js';
import type { BackoffOptions } from './backoff.js';
import type { CertificateInfo } from './certificate.js';
import type { UplinkThroughput } from './throughput.js';

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
}
