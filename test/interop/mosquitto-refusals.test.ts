// Interop: a real Mosquitto (OpenSSL) refuses our client certificate with a TLS alert, which our
// own Node broker cannot send (it checks client certificates after the handshake): the uplink
// names the alert under EDGEGW_E_UPLINK_CLIENT_CERT, under TLS 1.2 and 1.3.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { freePort, portOpen } from '../helpers/ports.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { createDemoPki, writeDemoPki, type DemoPki } from '../../src/demo/pki.js';
import { clientOptions } from '../../src/uplink/client.js';
import { describeConnectError } from '../../src/uplink/errors.js';
import { GW, makeUplink } from '../integration/uplink-support.js';
import { captureLog } from '../helpers/queue.js';
import { waitFor } from '../helpers/site.js';
import { MemorySource } from '../unit/uplink/memory-source.js';

/** The first error of one connect attempt with the uplink's options. */
function firstError(port: number, pki: DemoPki, maxVersion?: 'TLSv1.2'): Promise<Error | null> {
  const opts = clientOptions('localhost', port, {
    gatewayId: GW,
    keepaliveMs: 30_000,
    tls: { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey },
  });
  const client = mqtt.connect({ ...opts, ...(maxVersion === undefined ? {} : { maxVersion }) });
  let err: Error | null = null;
  return new Promise((resolve) => {
    client.on('error', (e: Error) => (err ??= e));
    client.on('connect', () => client.end(true));
    client.on('close', () => {
      client.end(true);
      resolve(err);
    });
  });
}

describe('interop: Mosquitto refuses client certificates with TLS alerts', function () {
  this.timeout(60_000);
  let dir: string;
  let port: number;
  let broker: ChildProcess | null = null;
  let pki: DemoPki;
  /** Its CA is trusted by the broker too, and its client certificate has expired. */
  let expired: DemoPki;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgegw-mosquitto-'));
    pki = createDemoPki(GW);
    expired = createDemoPki(GW, { clientValidity: { fromDays: -30, toDays: -1 } });
    await writeDemoPki(dir, pki);
    await writeFile(join(dir, 'clients-ca.pem'), pki.caCert + expired.caCert);
    port = await freePort();
    const conf = join(dir, 'mosquitto.conf');
    // tls_version is a minimum in Mosquitto; `user root` keeps it able to read the 0600 key files.
    await writeFile(
      conf,
      [
        'user root',
        'per_listener_settings false',
        'allow_anonymous true',
        `listener ${port} 127.0.0.1`,
        `cafile ${dir}/clients-ca.pem`,
        `certfile ${dir}/server.pem`,
        `keyfile ${dir}/server.key`,
        'require_certificate true',
        'tls_version tlsv1.2',
        '',
      ].join('\n'),
    );
    broker = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitFor(() => portOpen(port), 10_000, 'mosquitto to listen');
  });
  after(async () => {
    const b = broker;
    broker = null;
    if (b !== null && b.exitCode === null) {
      await new Promise((r) => {
        b.once('exit', r);
        b.kill('SIGTERM');
      });
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('a client certificate from another CA: "unknown ca", under TLS 1.3 and 1.2', async () => {
    const other = createDemoPki(GW);
    const stranger = { ...pki, clientCert: other.clientCert, clientKey: other.clientKey };
    for (const version of [undefined, 'TLSv1.2'] as const) {
      const err = await firstError(port, stranger, version);
      assert.ok(err !== null, `an error (${version ?? 'TLS 1.3'})`);
      const f = describeConnectError(err);
      assert.equal(f.code, 'EDGEGW_E_UPLINK_CLIENT_CERT', f.text);
      assert.match(
        f.text,
        /refused the client certificate \(uplink\.cert\): the broker does not trust the CA/,
      );
      assert.match(f.text, /tlsv1 alert unknown ca\)$/);
    }
  });

  it('an expired client certificate from a CA the broker trusts: "certificate expired"', async () => {
    const err = await firstError(port, {
      ...pki,
      clientCert: expired.clientCert,
      clientKey: expired.clientKey,
    });
    assert.ok(err !== null);
    assert.match(
      describeConnectError(err).text,
      /^EDGEGW_E_UPLINK_CLIENT_CERT: .*: it expired \(or the broker clock is wrong\): renew it .*certificate expired\)$/,
    );
  });

  it("through the Uplink: status shows the broker's refusal", async () => {
    const other = createDemoPki(GW);
    const logs = captureLog();
    const uplink = makeUplink(
      { url: `mqtts://localhost:${port}` },
      { ...pki, clientCert: other.clientCert, clientKey: other.clientKey },
      new MemorySource(),
      { log: logs.log },
    );
    await uplink.start();
    try {
      await waitFor(() => uplink.state().lastError !== null, 10_000, 'a connect error');
      assert.match(
        uplink.state().lastError!,
        /^EDGEGW_E_UPLINK_CLIENT_CERT: the broker refused the client certificate/,
      );
      const audit = logs.lines.find((l) => l.audit === 'certificate');
      assert.equal(audit?.code, 'EDGEGW_E_UPLINK_CLIENT_CERT', 'the certificate audit names the class');
    } finally {
      await uplink.stop(0);
    }
  });
});
