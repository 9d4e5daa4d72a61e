// Each connection failure class, produced for real (TLS servers with certificates from pki.ts,
// aedes refusing in its CONNACK, a closed port, a silent TCP server, an unresolvable name) and
// met by the real mqtt.js client with the uplink's clientOptions: the error mqtt.js emits gets its
// class's code and a text that says what to fix.

import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import mqtt, { type IClientOptions } from 'mqtt';
import { createDemoPki, type DemoPki } from '../../src/demo/pki.js';
import { startTlsBroker, type TlsBroker } from '../../src/demo/broker.js';
import { clientOptions, watchHandshake } from '../../src/uplink/client.js';
import {
  classifyError,
  describeClosedBeforeConnack,
  describeConnectError,
  isCertificateError,
  type FailureContext,
} from '../../src/uplink/errors.js';
import { GW } from './uplink-support.js';

interface Outcome {
  /** The first error mqtt.js emitted, or null when the connection just closed. */
  err: Error | null;
  /** Whether the TLS handshake had completed. */
  secured: boolean;
}

/** Connects once with the uplink's options (plus `over`) and returns how the attempt ended. */
function attempt(
  host: string,
  port: number,
  pki: DemoPki,
  over: IClientOptions & { maxVersion?: tls.SecureVersion } = {},
): Promise<Outcome> {
  const opts = clientOptions(host, port, {
    gatewayId: GW,
    keepaliveMs: 30_000,
    tls: { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey },
  });
  const client = mqtt.connect({ ...opts, ...over });
  const secured = watchHandshake(client);
  let err: Error | null = null;
  return new Promise((resolve, reject) => {
    client.on('error', (e: Error) => (err ??= e));
    client.on('connect', () => {
      client.end(true);
      reject(new Error('connected, but this attempt should fail'));
    });
    client.on('close', () => {
      client.end(true);
      resolve({ err, secured: secured() });
    });
  });
}

/** The emitted error's class text (with `ctx`), asserted to exist and to leak nothing. */
function failed(o: Outcome, ctx?: FailureContext): string {
  assert.ok(o.err !== null, 'mqtt.js emitted an error');
  const text = describeConnectError(o.err, ctx).text;
  assert.equal(classifyError(o.err, ctx), text);
  assert.ok(!/BEGIN|PRIVATE|deps\/openssl|\.c:\d+/.test(text), text);
  return text;
}

describe('connection failure classes (real servers, the real mqtt.js client)', function () {
  this.timeout(30_000);
  let pki: DemoPki;
  let other: DemoPki;
  let broker: TlsBroker | null = null;
  const servers: { server: net.Server; sockets: Set<net.Socket> }[] = [];

  before(() => {
    pki = createDemoPki(GW);
    other = createDemoPki(GW); // an unrelated CA
  });
  afterEach(async () => {
    await broker?.close();
    broker = null;
    for (const { server, sockets } of servers.splice(0)) {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  /** Listens on 127.0.0.1 until the test ends (its sockets are destroyed then); returns the port. */
  async function listen(server: net.Server): Promise<number> {
    const sockets = new Set<net.Socket>();
    server.on('connection', (s: net.Socket) => sockets.add(s));
    servers.push({ server, sockets });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as net.AddressInfo).port;
  }

  it('unknown CA: the broker certificate is not signed by a CA in uplink.ca', async () => {
    broker = await startTlsBroker({ pki: other });
    const o = await attempt('localhost', broker.port, pki);
    const text = failed(o);
    assert.match(text, /^EDGEGW_E_UPLINK_TLS_CA: the broker certificate is not signed by a CA in uplink\.ca/);
    assert.match(text, /Amazon Root CA 1/);
    assert.ok(isCertificateError(o.err!));
  });

  it("an expired broker certificate: says so and shows the gateway's clock", async () => {
    const expired = createDemoPki(GW, { serverValidity: { fromDays: -30, toDays: -1 } });
    broker = await startTlsBroker({ pki: expired });
    const o = await attempt('localhost', broker.port, expired);
    const text = failed(o, { now: Date.UTC(2031, 0, 2, 3, 4, 5) });
    assert.match(text, /^EDGEGW_E_UPLINK_TLS_EXPIRED: the broker certificate has expired/);
    assert.match(text, /clock, which reads 2031-01-02T03:04:05Z/);
    assert.match(text, /\(CERT_HAS_EXPIRED/);
  });

  it('a broker certificate not valid yet: names the clock as the likely cause, with its time', async () => {
    const future = createDemoPki(GW, { serverValidity: { fromDays: 3, toDays: 400 } });
    broker = await startTlsBroker({ pki: future });
    const o = await attempt('localhost', broker.port, future);
    const text = failed(o, { now: Date.UTC(2019, 11, 31, 23, 59, 58) });
    assert.match(text, /^EDGEGW_E_UPLINK_TLS_NOT_YET_VALID: the broker certificate is not valid yet/);
    assert.match(text, /reads 2019-12-31T23:59:58Z: the clock is probably behind/);
    // Without a context the text shows the gateway's real clock.
    const shown = /reads (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)/.exec(failed(o))?.[1];
    assert.ok(shown !== undefined && Math.abs(Date.parse(shown) - Date.now()) < 60_000, shown);
  });

  it('a certificate for another host: names the host of the URL and the names in the certificate', async () => {
    const elsewhere = createDemoPki(GW, { serverNames: ['broker.example.com'] });
    broker = await startTlsBroker({ pki: elsewhere });
    const text = failed(await attempt('localhost', broker.port, elsewhere));
    assert.match(
      text,
      /^EDGEGW_E_UPLINK_TLS_HOSTNAME: the broker certificate is not for "localhost", the host in uplink\.url/,
    );
    assert.match(text, /it is for DNS:broker\.example\.com/);
  });

  it('a broker that offers only TLS 1.1: TLS version refused', async () => {
    broker = await startTlsBroker({
      pki,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    const text = failed(await attempt('localhost', broker.port, pki));
    assert.match(text, /^EDGEGW_E_UPLINK_TLS_VERSION: .*TLS 1\.2 or 1\.3/);
    assert.match(text, /\(EPROTO: tlsv1 alert protocol version\)$/);
  });

  it('client certificate refused: by an alert (none sent), by a cut handshake (TLS 1.2), by a hang-up (TLS 1.3)', async () => {
    broker = await startTlsBroker({ pki });
    // OpenSSL itself refuses a handshake without a client certificate, with an alert.
    const none = await attempt('localhost', broker.port, pki, { cert: undefined, key: undefined });
    assert.match(
      failed(none),
      /^EDGEGW_E_UPLINK_CLIENT_CERT: the broker refused the client certificate .*certificate required/,
    );
    assert.ok(isCertificateError(none.err!));
    // Node's TLS server checks a certificate from an unknown CA after the handshake and hangs up.
    const stranger = { ...pki, clientCert: other.clientCert, clientKey: other.clientKey };
    const tls12 = await attempt('localhost', broker.port, stranger, { maxVersion: 'TLSv1.2' });
    assert.match(
      failed(tls12),
      /^EDGEGW_E_UPLINK_CLIENT_CERT: the broker closed the connection during the TLS handshake/,
    );
    const tls13 = await attempt('localhost', broker.port, stranger);
    assert.equal(tls13.err, null, 'no error: the broker just closed');
    assert.equal(tls13.secured, true);
    const closed = describeClosedBeforeConnack(tls13.secured);
    assert.equal(closed.code, 'EDGEGW_E_UPLINK_CLIENT_CERT');
    assert.match(closed.text, /after the TLS handshake without a CONNACK.*iot:Connect/);
    assert.equal(broker.published.connections, 0, 'the broker accepted none of them');
  });

  it('CONNACK refused (3.1.1): the reason by name, with what to check', async () => {
    broker = await startTlsBroker({ pki });
    let rc = 5;
    broker.aedes.authenticate = (_client, _user, _pass, done) => {
      done(Object.assign(new Error('refused'), { returnCode: rc }), false);
    };
    const text = failed(await attempt('localhost', broker.port, pki));
    assert.match(
      text,
      /^EDGEGW_E_UPLINK_CONNACK: the broker refused the connection: Not authorized \(CONNACK return code 5\)/,
    );
    assert.match(text, /iot:Connect for client id gateway\.id/);
    rc = 2;
    assert.match(
      failed(await attempt('localhost', broker.port, pki)),
      /^EDGEGW_E_UPLINK_CONNACK: .*Identifier rejected \(CONNACK return code 2\); .*gateway\.id/,
    );
    rc = 4;
    assert.match(
      failed(await attempt('localhost', broker.port, pki)),
      /^EDGEGW_E_UPLINK_CONNACK: .*Bad user name or password .*client certificate/,
    );
    rc = 3; // what IoT Core answers a client over its connect rate
    assert.match(
      failed(await attempt('localhost', broker.port, pki)),
      /^EDGEGW_E_UPLINK_THROTTLED: .*Server unavailable \(CONNACK return code 3\); the uplink backs off/,
    );
  });

  it('CONNACK refused (MQTT 5): quota and connection rate are throttling, others a named refusal', async () => {
    let rc = 0x97;
    // A TLS server that answers CONNECT with an MQTT 5 CONNACK: flags 0, reason code, no properties.
    const server = tls.createServer({ cert: pki.serverCert, key: pki.serverKey }, (s) => {
      s.once('data', () => s.write(Buffer.from([0x20, 3, 0, rc, 0])));
      s.on('error', () => undefined);
    });
    const port = await listen(server);
    const v5 = { protocolVersion: 5 } as const;
    assert.match(
      failed(await attempt('localhost', port, pki, v5)),
      /^EDGEGW_E_UPLINK_THROTTLED: .*Quota exceeded \(CONNACK 0x97\)/,
    );
    rc = 0x9f;
    assert.match(
      failed(await attempt('localhost', port, pki, v5)),
      /^EDGEGW_E_UPLINK_THROTTLED: .*Connection rate exceeded \(CONNACK 0x9F\)/,
    );
    rc = 0x87;
    assert.match(
      failed(await attempt('localhost', port, pki, v5)),
      /^EDGEGW_E_UPLINK_CONNACK: .*Not authorized \(CONNACK 0x87\); .*iot:Connect/,
    );
    rc = 0x85;
    assert.match(
      failed(await attempt('localhost', port, pki, v5)),
      /^EDGEGW_E_UPLINK_CONNACK: .*Client Identifier not valid \(CONNACK 0x85\)/,
    );
  });

  it('a host name that does not resolve: DNS failure naming the host', async () => {
    const text = failed(await attempt('nonexistent.invalid', 8883, pki));
    // ENOTFOUND normally; EAI_AGAIN where no resolver answers at all.
    assert.match(text, /^EDGEGW_E_UPLINK_DNS: .*"nonexistent\.invalid"/);
    assert.match(text, /\((getaddrinfo )?(ENOTFOUND|EAI_AGAIN)/);
  });

  it('a closed port: connection refused, naming the address and the port to check', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const text = failed(await attempt('127.0.0.1', port, pki));
    assert.match(
      text,
      new RegExp(
        `^EDGEGW_E_UPLINK_REFUSED: nothing accepts connections at 127\\.0\\.0\\.1:${port}: check the port in uplink\\.url`,
      ),
    );
    assert.match(text, /ECONNREFUSED/);
  });

  it('a server that accepts and never answers: connect timeout', async () => {
    const port = await listen(net.createServer());
    const o = await attempt('127.0.0.1', port, pki, { connectTimeout: 300 });
    const text = failed(o, { connectTimeoutMs: 300 });
    assert.equal(o.secured, false);
    assert.match(
      text,
      /^EDGEGW_E_UPLINK_TIMEOUT: no TLS handshake and CONNACK from the broker within 0\.3 s: a firewall/,
    );
    assert.match(failed(o), /within 10 s/, 'the uplink’s own timeout by default');
  });
});
