// Turns a connection error into the `lastError` text of `edgegw status`: a stable code per failure
// class (README error table) and a sentence that says what to fix, then the library's own detail in
// brackets. TLS, DNS and socket errors are told apart by the codes Node and OpenSSL give them,
// broker refusals by their MQTT reason code (mqtt-reasons.ts). Never includes payloads or key
// material: only host names, ports, times, codes and the names in a certificate.

import type { ErrorCode } from '../errors.js';
import { CONNECT_TIMEOUT_MS } from './client.js';
import { describeConnack, describePuback, type UplinkFailure } from './mqtt-reasons.js';

export { describeConnack, describeDisconnect, describePuback, type UplinkFailure } from './mqtt-reasons.js';

const MAX_DETAIL = 160;

/** What the error itself may not say: the gateway's wall clock, the broker of uplink.url. */
export interface FailureContext {
  /** Wall-clock ms (Clock.now()); certificate validity texts show it. Default: Date.now(). */
  now?: number;
  /** The host of uplink.url, and host:port. */
  host?: string;
  broker?: string;
  /** The connect timeout the client used; default CONNECT_TIMEOUT_MS. */
  connectTimeoutMs?: number;
}

/** OpenSSL verify results meaning: the broker certificate does not chain to a CA in uplink.ca. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'INVALID_CA',
  'CERT_CHAIN_TOO_LONG',
  'PATH_LENGTH_EXCEEDED',
]);

/** Other verify results about the broker certificate. */
const SERVER_CERT = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'INVALID_PURPOSE',
  'CERT_REVOKED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
]);

/**
 * TLS alerts the broker sends when it refuses our client certificate, with what to do. OpenSSL
 * names a received alert `tlsv1 alert unknown ca`, `sslv3 alert bad certificate`, …
 */
const CLIENT_CERT_ALERTS: Readonly<Record<string, string>> = {
  'bad certificate': 'it is damaged or not for client authentication',
  'unsupported certificate': 'its type or key usage is not accepted',
  'certificate revoked': 'it was revoked: provision a new one',
  'certificate expired': 'it expired (or the broker clock is wrong): renew it',
  'certificate unknown': 'the broker does not know it: register and activate it',
  'unknown ca':
    'the broker does not trust the CA that signed it: register the certificate (or its CA) with the broker',
  'access denied': 'the broker denies this certificate access: check that it is active and allowed',
  'certificate required': 'the gateway sent none: set uplink.cert and uplink.key',
};

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA']);
const NO_ROUTE = new Set(['ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN', 'EHOSTDOWN']);
const VERSION_CODES = new Set([
  'ERR_SSL_UNSUPPORTED_PROTOCOL',
  'ERR_SSL_NO_PROTOCOLS_AVAILABLE',
  'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
]);
/** OpenSSL's words for a peer that answered something other than TLS. */
const NOT_TLS = new Set([
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'ERR_SSL_UNKNOWN_PROTOCOL',
]);

/** Node's message when the peer closed before the TLS handshake finished. */
const HANDSHAKE_CUT = /before secure TLS connection was established/;

function stringCode(err: Error): string | undefined {
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === 'string' ? code : undefined;
}

function field(err: Error, name: string): string | undefined {
  const v = (err as unknown as Record<string, unknown>)[name];
  return typeof v === 'string' || typeof v === 'number' ? String(v) : undefined;
}

/**
 * The reason of an OpenSSL error without its source file and line: Node gives it as `err.reason`
 * for some errors; an EPROTO carries it only inside `…:error:0A000418:SSL routines:func:REASON:file…`.
 */
function opensslReason(err: Error): string | undefined {
  const reason = field(err, 'reason');
  if (reason !== undefined && field(err, 'library') !== undefined) return reason;
  return /error:[0-9A-F]+:[^:]*:[^:]*:([^:]+)/.exec(err.message)?.[1];
}

/** The name of a TLS alert the broker sent us, e.g. `unknown ca`, or undefined. */
function receivedAlert(err: Error): string | undefined {
  return /\balert (.+)$/
    .exec(opensslReason(err) ?? '')?.[1]
    ?.trim()
    .toLowerCase();
}

function oneLine(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > MAX_DETAIL ? `${t.slice(0, MAX_DETAIL - 1)}…` : t;
}

/** `code (reason)`, `code`, or the message: what the library said, for the bracket at the end. */
function detailOf(err: Error): string {
  const code = stringCode(err);
  const reason = opensslReason(err);
  if (code !== undefined && reason !== undefined) return oneLine(`${code}: ${reason}`);
  if (code !== undefined && !code.startsWith('ERR_') && !err.message.includes(code)) {
    return oneLine(`${code}: ${err.message}`);
  }
  return oneLine(code !== undefined && err.message === '' ? code : err.message);
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function make(code: ErrorCode, what: string, detail: string): UplinkFailure {
  return { code, text: `${code}: ${what} (${detail})` };
}

function serverCertificate(err: Error, code: string, ctx: FailureContext): UplinkFailure | null {
  const detail = detailOf(err);
  if (UNTRUSTED.has(code)) {
    return make(
      'EDGEGW_E_UPLINK_TLS_CA',
      'the broker certificate is not signed by a CA in uplink.ca: for AWS IoT Core use Amazon Root CA 1 ' +
        '(AmazonRootCA1.pem) with the -ats endpoint; for another broker, the CA that signed its certificate',
      detail,
    );
  }
  const clock = iso(ctx.now ?? Date.now());
  if (code === 'CERT_HAS_EXPIRED') {
    return make(
      'EDGEGW_E_UPLINK_TLS_EXPIRED',
      `the broker certificate has expired by this gateway's clock, which reads ${clock}: if that is ` +
        'not the time now, set the clock (NTP); otherwise the broker must renew its certificate',
      detail,
    );
  }
  if (code === 'CERT_NOT_YET_VALID') {
    return make(
      'EDGEGW_E_UPLINK_TLS_NOT_YET_VALID',
      `the broker certificate is not valid yet by this gateway's clock, which reads ${clock}: ` +
        'the clock is probably behind; set it (NTP, or the RTC and its battery)',
      detail,
    );
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH') {
    const host = field(err, 'host') ?? ctx.host ?? 'the host';
    const names = oneLine(/(?:altnames|list|CN): (.*)$/.exec(field(err, 'reason') ?? err.message)?.[1] ?? '');
    const forNames = names === '' ? '' : ` (it is for ${names.slice(0, 100)})`;
    return make(
      'EDGEGW_E_UPLINK_TLS_HOSTNAME',
      `the broker certificate is not for "${host}", the host in uplink.url${forNames}: correct the ` +
        'host (for AWS IoT Core: `aws iot describe-endpoint --endpoint-type iot:Data-ATS`)',
      code,
    );
  }
  return null;
}

function clientCertificate(err: Error): UplinkFailure | null {
  const alert = receivedAlert(err);
  const why = alert === undefined ? undefined : CLIENT_CERT_ALERTS[alert];
  if (why !== undefined) {
    return make(
      'EDGEGW_E_UPLINK_CLIENT_CERT',
      `the broker refused the client certificate (uplink.cert): ${why}`,
      detailOf(err),
    );
  }
  if (stringCode(err) === 'ECONNRESET' && HANDSHAKE_CUT.test(err.message)) {
    // What a broker that checks the certificate after the handshake (Node's TLS server, IoT Core
    // for an inactive certificate) looks like from here under TLS 1.2: no alert, a cut connection.
    return make(
      'EDGEGW_E_UPLINK_CLIENT_CERT',
      'the broker closed the connection during the TLS handshake: it most likely refused the client ' +
        'certificate (uplink.cert: not registered or not active, or signed by a CA the broker does not ' +
        'trust); otherwise the port does not speak TLS (IoT Core: 8883, or 443 with uplink.alpn)',
      'ECONNRESET',
    );
  }
  return null;
}

function network(err: Error, code: string | undefined, ctx: FailureContext): UplinkFailure | null {
  const detail = detailOf(err);
  if (code !== undefined && DNS_CODES.has(code)) {
    const host = field(err, 'hostname') ?? ctx.host ?? 'the broker host';
    const what =
      code === 'EAI_AGAIN'
        ? `no DNS answer for "${host}": check the gateway's network and DNS server (/etc/resolv.conf)`
        : `the broker host "${host}" does not resolve: check the host in uplink.url and the gateway's DNS`;
    return make('EDGEGW_E_UPLINK_DNS', what, detail);
  }
  if (code === 'ECONNREFUSED') {
    const address = field(err, 'address');
    const port = field(err, 'port');
    const at =
      address !== undefined && port !== undefined ? `${address}:${port}` : (ctx.broker ?? 'the broker');
    return make(
      'EDGEGW_E_UPLINK_REFUSED',
      `nothing accepts connections at ${at}: check the port in uplink.url (AWS IoT Core: 8883, or 443 ` +
        'with uplink.alpn) and that the broker is running',
      detail,
    );
  }
  if (code === 'ETIMEDOUT' || (code === undefined && /connack timeout/i.test(err.message))) {
    const s = Math.round((ctx.connectTimeoutMs ?? CONNECT_TIMEOUT_MS) / 100) / 10;
    return make(
      'EDGEGW_E_UPLINK_TIMEOUT',
      `no TLS handshake and CONNACK from the broker within ${s} s: a firewall may drop outgoing ` +
        'traffic to the broker port, or the link is down or very slow',
      detail,
    );
  }
  if (code !== undefined && NO_ROUTE.has(code)) {
    return make(
      'EDGEGW_E_UPLINK_CONNECT',
      "no route to the broker: check the gateway's network (link, default route, cellular modem)",
      detail,
    );
  }
  return null;
}

function tlsVersion(err: Error, code: string | undefined): boolean {
  if (code !== undefined && VERSION_CODES.has(code)) return true;
  return /\b(alert protocol version|unsupported protocol|no protocols available)\b/.test(
    opensslReason(err) ?? '',
  );
}

/** The failure class of a connection error, with the text `edgegw status` shows as `lastError`. */
export function describeConnectError(err: Error, ctx: FailureContext = {}): UplinkFailure {
  const raw = (err as { code?: unknown }).code;
  if (typeof raw === 'number') {
    // mqtt.js ErrorWithReasonCode: a refused CONNACK, or a PUBACK reason code (MQTT 5).
    if (/^Connection refused/.test(err.message)) return describeConnack(raw);
    if (/^Publish error/.test(err.message)) return describePuback(raw);
    return make('EDGEGW_E_UPLINK_CONNECT', 'the broker answered with an error', `reason code ${raw}`);
  }
  const code = stringCode(err);
  const cert = code === undefined ? null : serverCertificate(err, code, ctx);
  if (cert !== null) return cert;
  if (tlsVersion(err, code)) {
    return make(
      'EDGEGW_E_UPLINK_TLS_VERSION',
      'the broker and this gateway share no TLS version: the gateway needs TLS 1.2 or 1.3 (AWS IoT Core ' +
        'offers both; check for a proxy, or a port that is not the broker)',
      detailOf(err),
    );
  }
  const client = clientCertificate(err);
  if (client !== null) return client;
  const net = network(err, code, ctx);
  if (net !== null) return net;
  if (code !== undefined && NOT_TLS.has(code)) {
    return make(
      'EDGEGW_E_UPLINK_TLS',
      'the server does not answer in TLS: the port in uplink.url is probably plain MQTT (1883) or not the broker',
      detailOf(err),
    );
  }
  if (isTlsError(err)) return make('EDGEGW_E_UPLINK_TLS', 'the TLS handshake failed', detailOf(err));
  return make('EDGEGW_E_UPLINK_CONNECT', 'the connection to the broker failed', detailOf(err));
}

/** The `lastError` text of a connection error: `CODE: what to fix (detail)`. */
export function classifyError(err: Error, ctx?: FailureContext): string {
  return describeConnectError(err, ctx).text;
}

/**
 * The connection closed before CONNACK and no error said why. `secured`: the TLS handshake had
 * completed, so a broker that verified against uplink.ca hung up on this device: what IoT Core does
 * when the certificate is not active or its policy does not allow iot:Connect, and what a broker that
 * checks client certificates after the handshake does under TLS 1.3.
 */
export function describeClosedBeforeConnack(secured: boolean): UplinkFailure {
  if (secured) {
    return {
      code: 'EDGEGW_E_UPLINK_CLIENT_CERT',
      text:
        'EDGEGW_E_UPLINK_CLIENT_CERT: the broker closed the connection after the TLS handshake without a ' +
        'CONNACK: it did not accept this device. Check that the client certificate (uplink.cert) is ' +
        'registered and active with the broker and, for AWS IoT Core, that its policy allows ' +
        'iot:Connect for client id gateway.id',
    };
  }
  return {
    code: 'EDGEGW_E_UPLINK_CONNECT',
    text:
      'EDGEGW_E_UPLINK_CONNECT: the connection closed before the TLS handshake completed: the port in ' +
      'uplink.url may not speak TLS, or a proxy or firewall cut it',
  };
}

export function isTlsError(err: Error): boolean {
  const code = stringCode(err);
  if (code !== undefined) {
    if (
      UNTRUSTED.has(code) ||
      SERVER_CERT.has(code) ||
      code.startsWith('ERR_SSL_') ||
      code.startsWith('ERR_TLS_')
    ) {
      return true;
    }
  }
  return /\b(TLS|SSL|certificate)\b/i.test(err.message);
}

/**
 * A TLS failure about a certificate (ours refused, theirs not verified, a wrong clock), as opposed
 * to a protocol or network failure: these are the ones the `certificate` audit entry reports.
 */
export function isCertificateError(err: Error): boolean {
  const code = stringCode(err);
  if (code !== undefined && (UNTRUSTED.has(code) || SERVER_CERT.has(code))) return true;
  const alert = receivedAlert(err);
  return alert !== undefined && CLIENT_CERT_ALERTS[alert] !== undefined;
}

/**
 * One warning per failure class: true the first time a code is seen since the last success (the
 * uplink logs that attempt at warn and the retries of the same class at debug).
 */
export class FailureLatch {
  private last: ErrorCode | null = null;

  changed(code: ErrorCode): boolean {
    if (code === this.last) return false;
    this.last = code;
    return true;
  }

  /** A connection succeeded: the next failure is news again. */
  reset(): void {
    this.last = null;
  }
}
