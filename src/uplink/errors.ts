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
