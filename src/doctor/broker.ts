// The way to the broker, one step per line so the broken step is obvious: DNS, TCP connect, TLS
// handshake (SNI, ALPN when set, server certificate and host name verified), then an MQTT CONNECT
// with the device certificate and a clean DISCONNECT. Every step is bounded by a timeout.
//
// The MQTT step uses the client id `<gateway.id>-doctor`: with the daemon's own id the broker
// would close the daemon's session (a takeover). An IoT policy that allows only the thing name
// as client id refuses it; that is reported as a WARN that says so, not as a broken uplink.

import { lookup } from 'node:dns/promises';
import net from 'node:net';
import tls from 'node:tls';
import mqtt from 'mqtt';
import type { SiteConfig } from '../config/schema.js';
import { EdgegwError } from '../errors.js';
import { parseBrokerUrl } from '../uplink/broker-url.js';
import { clientOptions } from '../uplink/client.js';
import { loadTlsFiles, type TlsMaterial } from '../uplink/tls-files.js';
import { errCode, fail, pass, warn, withTimeout, type CheckLine } from './check.js';

/** IoT Core allows 128 characters of client id. */
const MAX_CLIENT_ID = 128;
const SUFFIX = '-doctor';

export function doctorClientId(gatewayId: string): string {
  return `${gatewayId.slice(0, MAX_CLIENT_ID - SUFFIX.length)}${SUFFIX}`;
}

interface Target {
  host: string;
  port: number;
  broker: string;
  alpn: string | undefined;
}

export async function checkBroker(site: SiteConfig, timeoutMs: number): Promise<CheckLine[]> {
  let target: Target;
  try {
    target = { ...parseBrokerUrl(site.uplink.url), alpn: site.uplink.alpn };
  } catch (err) {
    return [fail('broker', err instanceof Error ? err.message : String(err), 'fix uplink.url')];
  }
  const lines: CheckLine[] = [];
  const skip = (steps: string, why: string): CheckLine[] => [
    ...lines,
    warn('broker', `skipped ${steps}: ${why}`, 'fix the FAIL line above first'),
  ];

  const dns = await checkDns(target, timeoutMs);
  lines.push(dns);
  if (dns.result === 'FAIL') return skip('tcp, tls, mqtt', 'the host name does not resolve');
  const tcp = await checkTcp(target, timeoutMs);
  lines.push(tcp);
  if (tcp.result === 'FAIL') return skip('tls, mqtt', 'no TCP connection');
  let material: TlsMaterial;
  try {
    material = await loadTlsFiles(site.uplink);
  } catch (err) {
    if (!(err instanceof EdgegwError)) throw err;
    return skip('tls, mqtt', `the TLS files are unusable (${err.message})`);
  }
  const handshake = await checkTls(target, material, timeoutMs);
  lines.push(handshake);
  if (handshake.result === 'FAIL') return skip('mqtt', 'no TLS session');
  lines.push(await checkMqtt(site, target, material, timeoutMs));
  return lines;
}

async function checkDns(t: Target, timeoutMs: number): Promise<CheckLine> {
  if (net.isIP(t.host) !== 0) return pass('broker dns', `${t.host} is an address`);
  try {
    const addrs = await withTimeout(timeoutMs, 'DNS', () => lookup(t.host, { all: true }));
    return pass('broker dns', `${t.host} resolves to ${addrs.map((a) => a.address).join(', ')}`);
  } catch (err) {
    return fail(
      'broker dns',
      `${t.host} does not resolve (${errCode(err)})`,
      `check the host in uplink.url and the resolver: getent hosts ${t.host}`,
    );
  }
}

function checkTcp(t: Target, timeoutMs: number): Promise<CheckLine> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: t.host, port: t.port });
    const done = (line: CheckLine) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(line);
    };
    const blocked = (why: string) =>
      fail(
        'broker tcp',
        `${t.broker}: ${why}`,
        `allow outgoing TCP to ${t.broker} in the firewall` +
          (t.port === 8883 ? ' (or use port 443 with uplink.alpn: x-amzn-mqtt-ca)' : ''),
      );
    const timer = setTimeout(() => done(blocked(`no answer within ${timeoutMs} ms (blocked?)`)), timeoutMs);
    socket.once('connect', () => done(pass('broker tcp', `${t.broker} accepts connections`)));
    socket.once('error', (err) => done(blocked(`connection failed (${errCode(err)})`)));
  });
}

function checkTls(t: Target, m: TlsMaterial, timeoutMs: number): Promise<CheckLine> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: t.host,
      port: t.port,
      ca: m.ca,
      cert: m.cert,
      key: m.key,
      minVersion: 'TLSv1.2',
      rejectUnauthorized: true,
      ...(net.isIP(t.host) === 0 ? { servername: t.host } : {}),
      ...(t.alpn === undefined ? {} : { ALPNProtocols: [t.alpn] }),
    });
    const done = (line: CheckLine) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(line);
    };
    const timer = setTimeout(
      () =>
        done(
          fail(
            'broker tls',
            `${t.broker}: no TLS handshake within ${timeoutMs} ms`,
            'check that the port is the MQTT/TLS port of the broker',
          ),
        ),
      timeoutMs,
    );
    socket.once('secureConnect', () => {
      if (t.alpn !== undefined && socket.alpnProtocol !== t.alpn)
        return done(
          fail(
            'broker tls',
            `${t.broker} did not agree to ALPN ${t.alpn}`,
            'remove uplink.alpn, or use port 443 with x-amzn-mqtt-ca',
          ),
        );
      const peer = socket.getPeerCertificate();
      const issuer = typeof peer.issuer?.CN === 'string' ? `, issued by ${peer.issuer.CN}` : '';
      const alpn = t.alpn === undefined ? '' : `, ALPN ${t.alpn}`;
      done(
        pass(
          'broker tls',
          `${socket.getProtocol() ?? 'TLS'} with ${t.broker}, server certificate verified for ${t.host}${issuer}${alpn}`,
        ),
      );
    });
    socket.once('error', (err: Error) => done(tlsFailure(t, err)));
  });
}

function tlsFailure(t: Target, err: Error): CheckLine {
  const code = errCode(err);
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return fail(
      'broker tls',
      `the server certificate is not for ${t.host} (${code})`,
      'check the host in uplink.url (IoT Core: the ATS endpoint, aws iot describe-endpoint --endpoint-type iot:Data-ATS)',
    );
  if (/CERT|SIGNATURE|ISSUER|SELF_SIGNED/.test(code))
    return fail(
      'broker tls',
      `the server certificate does not verify against uplink.ca (${code})`,
      'point uplink.ca at the CA that signs the broker (AmazonRootCA1.pem for IoT Core)',
    );
  return fail(
    'broker tls',
    `TLS handshake with ${t.broker} failed (${code})`,
    'check that the port is the MQTT/TLS port of the broker',
  );
}

function checkMqtt(site: SiteConfig, t: Target, m: TlsMaterial, timeoutMs: number): Promise<CheckLine> {
  const clientId = doctorClientId(site.gateway.id);
  const opts = {
    ...clientOptions(t.host, t.port, {
      gatewayId: clientId,
      keepaliveMs: site.uplink.keepalive,
      tls: m,
      ...(t.alpn === undefined ? {} : { alpn: t.alpn }),
    }),
    connectTimeout: timeoutMs,
  };
  return new Promise((resolve) => {
    const client = mqtt.connect(opts);
    let settled = false;
    let connected = false;
    const done = (line: CheckLine) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.on('error', () => undefined);
      resolve(line);
    };
    const policy =
      `the broker refused client id ${clientId}: an IoT policy that allows only the thing name as client id ` +
      `refuses doctor's own id (the daemon's connection is not affected)`;
    const policyFix = `allow iot:Connect for client id ${clientId} in the IoT policy (see README, doctor)`;
    const timer = setTimeout(() => {
      client.end(true);
      done(
        fail(
          'broker mqtt',
          `no CONNACK from ${t.broker} within ${timeoutMs} ms`,
          'check that the port is an MQTT port of the broker',
        ),
      );
    }, timeoutMs);
    client.once('connect', () => {
      connected = true;
      // A clean DISCONNECT (end without force), bounded like everything else.
      client.end(false, {}, () =>
        done(pass('broker mqtt', `CONNECT as ${clientId} accepted, then a clean DISCONNECT`)),
      );
    });
    client.on('error', (err) => {
      // Once CONNACK came, a reset is the broker closing after doctor's DISCONNECT: not a failure.
      if (connected) return;
      client.end(true);
      const code = (err as { code?: unknown }).code;
      if (code === 2 || code === 5 || code === 135)
        return done(warn('broker mqtt', `${policy} (CONNACK code ${String(code)})`, policyFix));
      const text = errCode(err);
      if (/ALERT|CERTIFICATE/.test(text))
        return done(
          fail(
            'broker mqtt',
            `the broker refused the device certificate (${text})`,
            'register and activate the device certificate at the broker (IoT Core: aws iot update-certificate --new-status ACTIVE)',
          ),
        );
      done(fail('broker mqtt', `MQTT CONNECT failed (${text})`, 'check the broker'));
    });
    client.once('close', () => {
      // After a CONNACK the close is doctor's own DISCONNECT; before one, it is the broker's refusal.
      if (!settled && !connected) {
        client.end(true);
        done(warn('broker mqtt', `${policy} (the connection was closed before CONNACK)`, policyFix));
      }
    });
  });
}
