// The uplink refuses what DESIGN.md §2.4 forbids: an unknown CA, TLS below 1.2, credentials in the URL.

import assert from 'node:assert/strict';
import tls from 'node:tls';
import { createDemoPki, type DemoPki } from '../../src/demo/pki.js';
import { startTlsBroker, type TlsBroker } from '../../src/demo/broker.js';
import { EdgegwError } from '../../src/errors.js';
import type { Uplink } from '../../src/uplink/uplink.js';
import { waitFor } from '../helpers/site.js';
import { MemorySource } from '../unit/uplink/memory-source.js';
import { GW, makeUplink } from './uplink-support.js';
import { captureLog } from '../helpers/queue.js';

describe('uplink TLS refusals', function () {
  this.timeout(30_000);
  let pki: DemoPki;
  let other: DemoPki;
  let broker: TlsBroker | null = null;
  let uplink: Uplink | null = null;
  let clients: string[] = [];

  before(() => {
    pki = createDemoPki(GW);
    other = createDemoPki(GW); // an unrelated CA
  });
  afterEach(async () => {
    await uplink?.stop(0);
    uplink = null;
    await broker?.close();
    broker = null;
  });

  /** Connect attempts that failed so far (each one logged with its backoff). */
  const failedAttempts = (logs: ReturnType<typeof captureLog>): number =>
    logs.lines.filter((l) => l.msg === 'uplink connect failed').length;

  /** The `certificate` audit entries: one per distinct refusal, however many attempts failed. */
  function certificateAudits(logs: ReturnType<typeof captureLog>, pems: string[]) {
    const entries = logs.lines.filter((l) => l.audit === 'certificate');
    for (const e of entries) {
      const text = JSON.stringify(e);
      assert.ok(!text.includes('BEGIN'), text);
      for (const pem of pems) {
        const body = pem.split('\n').find((l) => l.length > 40 && !l.startsWith('-----'));
        assert.ok(body !== undefined && !text.includes(body), text);
      }
    }
    return entries;
  }

  async function start(b: TlsBroker, u: Uplink): Promise<void> {
    broker = b;
    clients = [];
    b.aedes.on('client', (c) => clients.push(c.id));
    uplink = u;
    await u.start();
  }

  it('a server certificate from another CA: never connects, lastError names the CA problem', async () => {
    const b = await startTlsBroker({ pki: other });
    const source = new MemorySource();
    source.append(3);
    const logs = captureLog();
    await start(b, makeUplink(b, pki, source, { log: logs.log }));
    await waitFor(() => failedAttempts(logs) >= 3, 10_000, 'three failed connect attempts');
    const st = uplink!.state();
    assert.match(
      st.lastError!,
      /^EDGEGW_E_UPLINK_TLS_CA: the broker certificate is not signed by a CA in uplink\.ca/,
    );
    assert.notEqual(st.state, 'connected');
    assert.deepEqual(clients, []);
    assert.equal(b.published.messages, 0);
    assert.equal(source.records.size, 3);
    assert.ok(!st.lastError!.includes('PRIVATE KEY'));
    const audits = certificateAudits(logs, [pki.clientKey, pki.clientCert]);
    assert.equal(audits.length, 1, JSON.stringify(audits));
    assert.equal(audits[0]!.problem, 'refused');
    assert.match(String(audits[0]!.reason), /^EDGEGW_E_UPLINK_TLS_CA: /);
    assert.equal(audits[0]!.code, 'EDGEGW_E_UPLINK_TLS_CA');
  });

  it('a client certificate the broker does not trust: refused, not connected', async () => {
    const b = await startTlsBroker({ pki });
    const source = new MemorySource();
    source.append(3);
    const stranger = { ...pki, clientCert: other.clientCert, clientKey: other.clientKey };
    const logs = captureLog();
    await start(b, makeUplink(b, stranger, source, { log: logs.log }));
    await waitFor(() => failedAttempts(logs) >= 3, 10_000, 'three failed connect attempts');
    // Node's TLS server hangs up on it after the handshake: under TLS 1.3 no error says why, so the
    // uplink reports the early close (EDGEGW_E_UPLINK_CLIENT_CERT once it uses
    // describeClosedBeforeConnack, see errors.ts).
    assert.match(uplink!.state().lastError!, /^EDGEGW_E_UPLINK_(CLIENT_CERT|CONNECT): /);
    assert.notEqual(uplink!.state().state, 'connected');
    assert.deepEqual(clients, []);
    assert.equal(source.records.size, 3);
  });

  it('a broker offering only TLS 1.1: refused', async () => {
    const b = await startTlsBroker({
      pki,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    const source = new MemorySource();
    await start(b, makeUplink(b, pki, source));
    await waitFor(() => uplink!.state().lastError !== null, 10_000, 'a connect error');
    assert.match(uplink!.state().lastError!, /^EDGEGW_E_UPLINK_TLS_VERSION: /);
    assert.notEqual(uplink!.state().state, 'connected');
    assert.deepEqual(clients, []);
    // Control: the broker really speaks TLS 1.1 to a client that allows it.
    const legacy = tls.connect({
      host: '127.0.0.1',
      port: b.port,
      servername: 'localhost',
      ca: pki.caCert,
      cert: pki.clientCert,
      key: pki.clientKey,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    const proto = await new Promise<string | null>((resolve, reject) => {
      legacy.once('secureConnect', () => resolve(legacy.getProtocol()));
      legacy.once('error', reject);
    });
    legacy.destroy();
    assert.equal(proto, 'TLSv1.1');
  });

  it('each failure class reaches status and the log with its own code', async () => {
    // A broker certificate for another host name.
    const elsewhere = createDemoPki(GW, { serverNames: ['broker.example.com'] });
    let logs = captureLog();
    let b = await startTlsBroker({ pki: elsewhere });
    await start(b, makeUplink(b, elsewhere, new MemorySource(), { log: logs.log }));
    await waitFor(() => failedAttempts(logs) >= 1, 10_000, 'a failed connect attempt');
    assert.match(uplink!.state().lastError!, /^EDGEGW_E_UPLINK_TLS_HOSTNAME: .*"localhost"/);
    const line = logs.lines.find((l) => l.msg === 'uplink connect failed')!;
    assert.equal(line.code, 'EDGEGW_E_UPLINK_TLS_HOSTNAME');
    await uplink!.stop(0);
    await b.close();
    // A broker that refuses in its CONNACK.
    logs = captureLog();
    b = await startTlsBroker({ pki });
    b.aedes.authenticate = (_client, _user, _pass, done) => {
      done(Object.assign(new Error('refused'), { returnCode: 5 }), false);
    };
    await start(b, makeUplink(b, pki, new MemorySource(), { log: logs.log }));
    await waitFor(() => failedAttempts(logs) >= 2, 10_000, 'two failed connect attempts');
    assert.match(
      uplink!.state().lastError!,
      /^EDGEGW_E_UPLINK_CONNACK: .*Not authorized \(CONNACK return code 5\)/,
    );
    assert.notEqual(uplink!.state().state, 'connected');
    await uplink!.stop(0);
    const port = b.port;
    await b.close();
    broker = null;
    // Nothing listens any more on that port.
    uplink = makeUplink({ url: `mqtts://127.0.0.1:${port}` }, pki, new MemorySource());
    await uplink.start();
    await waitFor(() => uplink!.state().lastError !== null, 10_000, 'a connect error');
    assert.match(
      uplink.state().lastError!,
      new RegExp(`^EDGEGW_E_UPLINK_REFUSED: nothing accepts connections at 127\\.0\\.0\\.1:${port}`),
    );
  });

  it('the right PKI connects (control for the refusals above)', async () => {
    const b = await startTlsBroker({ pki });
    await start(b, makeUplink(b, pki, new MemorySource()));
    await waitFor(() => uplink!.state().state === 'connected', 10_000, 'connected');
    assert.deepEqual(clients, [GW]);
  });

  it('rejects a URL with user:pass@ or a scheme other than mqtts, without echoing secrets', () => {
    const source = new MemorySource();
    for (const url of [
      'mqtts://user:s3cret@localhost:8883',
      'mqtt://localhost:1883',
      'wss://localhost',
      'nonsense',
    ]) {
      assert.throws(
        () => makeUplink({ url }, pki, source),
        (err: unknown) => {
          assert.ok(err instanceof EdgegwError);
          assert.equal(err.code, 'EDGEGW_E_CONFIG');
          assert.ok(!err.message.includes('s3cret'));
          return true;
        },
        url,
      );
    }
  });
});
