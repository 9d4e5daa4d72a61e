// Turns a connection error into the short `lastError` text of `edgegw status`: a stable code plus
// the library's reason. TLS verification failures get their own code so a technician looks at
// certificates, not at the network. Never includes payloads or key material.

import type { ErrorCode } from '../errors.js';

const MAX_REASON = 160;

/** OpenSSL verify results as Node reports them (`err.code`). */
const CERT_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'HOSTNAME_MISMATCH',
]);

export function isTlsError(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === 'string') {
    if (CERT_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return true;
  }
  return /\b(TLS|SSL|certificate)\b/i.test(err.message);
}

/**
 * A TLS failure about a certificate (ours refused, theirs not verified, a wrong clock), as opposed
 * to a protocol or network failure: these are the ones the `certificate` audit entry reports.
 */
export function isCertificateError(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && (CERT_CODES.has(code) || /CERTIFICATE|_CERT_/.test(code))) return true;
  return isTlsError(err) && /certificate/i.test(err.message);
}

/** `EDGEGW_E_UPLINK_TLS: CODE (reason)` or `EDGEGW_E_UPLINK_CONNECT: …`. */
export function classifyError(err: Error): string {
  const code: ErrorCode = isTlsError(err) ? 'EDGEGW_E_UPLINK_TLS' : 'EDGEGW_E_UPLINK_CONNECT';
  const raw = (err as { code?: unknown }).code;
  const detail = typeof raw === 'string' ? raw : typeof raw === 'number' ? `CONNACK ${raw}` : '';
  let reason = err.message.replace(/\s+/g, ' ').trim();
  if (reason.length > MAX_REASON) reason = `${reason.slice(0, MAX_REASON - 1)}…`;
  return detail === '' ? `${code}: ${reason}` : `${code}: ${detail} (${reason})`;
}

/** MQTT 5 reason codes a broker sends in DISCONNECT (MQTT 5.0 §3.14.2.1), named. */
const DISCONNECT_REASONS: Record<number, string> = {
  0x00: 'normal disconnection',
  0x80: 'unspecified error',
  0x81: 'malformed packet',
  0x82: 'protocol error',
  0x83: 'implementation specific error',
  0x87: 'not authorized',
  0x89: 'server busy',
  0x8b: 'server shutting down',
  0x8d: 'keep alive timeout',
  0x8e: 'session taken over',
  0x8f: 'topic filter invalid',
  0x90: 'topic name invalid',
  0x93: 'receive maximum exceeded',
  0x94: 'topic alias invalid',
  0x95: 'packet too large',
  0x96: 'message rate too high',
  0x97: 'quota exceeded',
  0x98: 'administrative action',
  0x99: 'payload format invalid',
  0x9a: 'retain not supported',
  0x9b: 'QoS not supported',
  0x9c: 'use another server',
  0x9d: 'server moved',
  0x9e: 'shared subscriptions not supported',
  0x9f: 'connection rate exceeded',
  0xa0: 'maximum connect time',
};

/** `EDGEGW_E_UPLINK_DISCONNECTED: the broker sent DISCONNECT 0x97 (quota exceeded)`. */
export function describeDisconnect(reasonCode: number): string {
  const hex = `0x${reasonCode.toString(16).padStart(2, '0')}`;
  const name = DISCONNECT_REASONS[reasonCode] ?? 'unknown reason';
  return `EDGEGW_E_UPLINK_DISCONNECTED: the broker sent DISCONNECT ${hex} (${name})`;
}
