// MQTT reason codes a broker answers with, named and turned into what a technician should do: the
// CONNACK return codes of MQTT 3.1.1 (1..5) and the reason codes of MQTT 5 (0x80 and up, shared by
// CONNACK, PUBACK and DISCONNECT). The two ranges do not overlap, so a code alone says which it is.

import type { ErrorCode } from '../errors.js';

/** A failure as `edgegw status` shows it: a stable code and the `lastError` text that starts with it. */
export interface UplinkFailure {
  code: ErrorCode;
  /** `CODE: what happened and what to fix (raw detail)`. */
  text: string;
}

/** MQTT 3.1.1 §3.2.2.3, CONNACK return codes. */
const CONNACK_311: Readonly<Record<number, string>> = {
  1: 'Unacceptable protocol version',
  2: 'Identifier rejected',
  3: 'Server unavailable',
  4: 'Bad user name or password',
  5: 'Not authorized',
};

/** MQTT 5 §2.4, the reason codes a server sends (0x80 and up are failures). */
const MQTT5: Readonly<Record<number, string>> = {
  0x00: 'Normal disconnection',
  0x04: 'Disconnect with Will Message',
  0x80: 'Unspecified error',
  0x81: 'Malformed Packet',
  0x82: 'Protocol Error',
  0x83: 'Implementation specific error',
  0x84: 'Unsupported Protocol Version',
  0x85: 'Client Identifier not valid',
  0x86: 'Bad User Name or Password',
  0x87: 'Not authorized',
  0x88: 'Server unavailable',
  0x89: 'Server busy',
  0x8a: 'Banned',
  0x8b: 'Server shutting down',
  0x8c: 'Bad authentication method',
  0x8d: 'Keep Alive timeout',
  0x8e: 'Session taken over',
  0x8f: 'Topic Filter invalid',
  0x90: 'Topic Name invalid',
  0x93: 'Receive Maximum exceeded',
  0x94: 'Topic Alias invalid',
  0x95: 'Packet too large',
  0x96: 'Message rate too high',
  0x97: 'Quota exceeded',
  0x98: 'Administrative action',
  0x99: 'Payload format invalid',
  0x9a: 'Retain not supported',
  0x9b: 'QoS not supported',
  0x9c: 'Use another server',
  0x9d: 'Server moved',
  0x9f: 'Connection rate exceeded',
  0xa0: 'Maximum connect time',
};

/**
 * The broker asks us to slow down: 3.1.1 rc 3 (what IoT Core answers a client over its connect
 * rate), server busy, message rate too high, quota exceeded, connection rate exceeded.
 */
const THROTTLE_311 = new Set([3]);
const THROTTLE_5 = new Set([0x88, 0x89, 0x96, 0x97, 0x9f]);

const SLOW_DOWN =
  'the uplink backs off and retries; if it persists, check that no other client connects with this ' +
  'gateway id and that uplink.backoff.min and uplink.limits stay within the account quotas';

/** What to do about a refusal, by MQTT 5 reason code (3.1.1 codes are mapped onto these). */
const ADVICE: Readonly<Record<number, string>> = {
  0x81: 'a bug in the gateway or the broker: please report it with the log',
  0x82: 'a bug in the gateway or the broker: please report it with the log',
  0x84: 'the broker does not speak this MQTT version',
  0x85: 'the broker refuses gateway.id as client id (IoT Core: 1..128 bytes, not starting with $, and allowed by the iot:Connect policy)',
  0x86: 'the broker wants a user name or password; this gateway authenticates with its client certificate (uplink.cert) only',
  0x87: 'the broker policy does not allow this: for AWS IoT Core, the policy attached to the certificate must allow iot:Connect for client id gateway.id and iot:Publish on uplink.topic',
  0x8a: 'the broker has banned this client: ask its operator',
  0x8b: 'the broker is shutting down; the uplink reconnects',
  0x8d: 'the broker heard nothing within the keep-alive (uplink.keepalive): the link is slow or lossy',
  0x8e: 'another client connected with this gateway id: give every gateway its own gateway.id',
  0x90: 'the broker refuses uplink.topic (IoT Core: at most 256 bytes and 7 slashes, no + or #, allowed by the policy)',
  0x93: 'the gateway sent more unacknowledged publishes than the broker allows; lower uplink.limits.inflight',
  0x95: 'a message was larger than the broker allows; lower uplink.limits.maxPayloadBytes',
  0x98: 'the broker operator ended this session; the uplink reconnects',
  0x99: 'the broker refused the payload format',
  0x9c: 'the broker asks the gateway to use another server: check uplink.url',
  0x9d: 'the broker has moved: check uplink.url',
  0xa0: 'the broker ends every connection after a while (IoT Core: at most a few weeks); the uplink reconnects',
};

const MQTT311_TO_5: Readonly<Record<number, number>> = { 1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87 };

function hex(rc: number): string {
  return `0x${rc.toString(16).padStart(2, '0').toUpperCase()}`;
}

/** The name of a reason code, or undefined for one neither version defines. */
export function reasonName(rc: number, version: 4 | 5): string | undefined {
  return version === 4 ? CONNACK_311[rc] : MQTT5[rc];
}

function failure(code: ErrorCode, what: string, advice: string | undefined): UplinkFailure {
  return { code, text: advice === undefined ? `${code}: ${what}` : `${code}: ${what}; ${advice}` };
}

/**
 * A refused CONNACK: rc 1..5 are MQTT 3.1.1 return codes, 0x80 and up MQTT 5 reason codes. A
 * throttling answer gets EDGEGW_E_UPLINK_THROTTLED, every other refusal EDGEGW_E_UPLINK_CONNACK.
 */
export function describeConnack(rc: number): UplinkFailure {
  const version = rc < 0x80 ? 4 : 5;
  const name = reasonName(rc, version) ?? 'unknown reason';
  const label = version === 4 ? `CONNACK return code ${rc}` : `CONNACK ${hex(rc)}`;
  const throttled = version === 4 ? THROTTLE_311.has(rc) : THROTTLE_5.has(rc);
  if (throttled) {
    return failure(
      'EDGEGW_E_UPLINK_THROTTLED',
      `the broker refused the connection: ${name} (${label})`,
      SLOW_DOWN,
    );
  }
  const advice = ADVICE[version === 4 ? (MQTT311_TO_5[rc] ?? rc) : rc];
  return failure('EDGEGW_E_UPLINK_CONNACK', `the broker refused the connection: ${name} (${label})`, advice);
}

/**
 * A DISCONNECT the broker sent (MQTT 5), for `lastError`: session taken over is
 * EDGEGW_E_UPLINK_TAKEOVER, a throttling reason EDGEGW_E_UPLINK_THROTTLED, anything else
 * EDGEGW_E_UPLINK_DISCONNECTED; each with the reason's name and code.
 */
export function describeDisconnect(rc: number): UplinkFailure {
  const name = MQTT5[rc] ?? 'unknown reason';
  const what = `the broker ended the session: ${name} (DISCONNECT ${hex(rc)})`;
  if (rc === 0x8e) return failure('EDGEGW_E_UPLINK_TAKEOVER', what, ADVICE[rc]);
  if (THROTTLE_5.has(rc)) return failure('EDGEGW_E_UPLINK_THROTTLED', what, SLOW_DOWN);
  return failure('EDGEGW_E_UPLINK_DISCONNECTED', what, ADVICE[rc]);
}

/**
 * A publish the broker refused in its PUBACK (MQTT 5). Quota exceeded and message rate too high
 * are EDGEGW_E_UPLINK_THROTTLED (the record stays queued and is sent again, slower); any other
 * refusal ends the connection (EDGEGW_E_UPLINK_CONNECT).
 */
export function describePuback(rc: number): UplinkFailure {
  const name = MQTT5[rc] ?? 'unknown reason';
  const what = `the broker refused a publish: ${name} (PUBACK ${hex(rc)})`;
  if (THROTTLE_5.has(rc)) {
    return failure('EDGEGW_E_UPLINK_THROTTLED', what, 'the record stays queued and is sent again, slower');
  }
  return failure('EDGEGW_E_UPLINK_CONNECT', what, ADVICE[rc]);
}
