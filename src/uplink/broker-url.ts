// The broker URL rule, in one place: the config check (config/rules.ts) reports its problems with
// the key path, the uplink refuses the same URLs (defence in depth, e.g. a URL from a reload).
// mqtts only, a host, and no credentials in any spelling: any `@` (also `%40`) means userinfo —
// `mqtts://u:p@h`, `mqtts:u:p@h` (no //), percent-encoded — and WHATWG URL parsing would read some
// of those forms as a path, not as userinfo. The URL is never quoted back: it is where a password
// would be.

import { EdgegwError, Exit } from '../errors.js';

export interface BrokerAddress {
  host: string;
  port: number;
  /** `host:port`, for logs and status. */
  broker: string;
}

/** What is wrong with `url` as a broker URL (each problem a sentence that says what to fix); [] when fine. */
export function brokerUrlProblems(url: string): string[] {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]{0,15}):/.exec(url)?.[1];
  const other = scheme !== undefined && scheme.toLowerCase() !== 'mqtts';
  const wrongScheme = (used: string | undefined) =>
    `the URL uses ${used}; only mqtts:// (MQTT over TLS) is allowed`;
  if (url.includes('@') || /%40/i.test(url)) {
    const out = [
      'the URL carries user:password@; remove it: IoT Core authenticates the gateway by its client certificate',
    ];
    if (other) out.push(wrongScheme(scheme));
    return out;
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return ['the value is not a URL; write mqtts://HOST:PORT'];
  }
  if (u.protocol !== 'mqtts:') return [wrongScheme(other ? scheme : u.protocol.replace(/:$/, ''))];
  if (!url.slice(scheme?.length ?? 0).startsWith('://') || u.hostname === '') {
    return ['the URL has no host; write mqtts://HOST:PORT'];
  }
  return [];
}

/** Parses a broker URL the config check accepted; throws EDGEGW_E_CONFIG (naming uplink.url) otherwise. */
export function parseBrokerUrl(url: string): BrokerAddress {
  const problem = brokerUrlProblems(url)[0];
  if (problem !== undefined) throw new EdgegwError('EDGEGW_E_CONFIG', `uplink.url: ${problem}`, Exit.CONFIG);
  const u = new URL(url);
  const port = u.port === '' ? 8883 : Number(u.port);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return { host, port, broker: `${u.hostname}:${port}` };
}
