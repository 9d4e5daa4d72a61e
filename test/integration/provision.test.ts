// `edgegw provision` in a child process against the IoT Core provisioning simulator on a real TLS
// broker backed by a real test CA: with a CSR (the key is made on the gateway) and without one, a
// template that rejects, a reply that never comes (to the first request or to RegisterThing), and
// a working identity that is not replaced without --force. Each failure leaves the files exactly as
// they were.

import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { chmod, chown, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createDemoPki } from '../../src/demo/pki.js';
import { dirname } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { makeIdentitySite, type IdentitySite } from '../helpers/identity.js';

const TEMPLATES = {
  fleet: { deviceConfiguration: { region: 'eu' } },
  // RegisterThing's reply is lost (CreateCertificateFromCsr was answered).
  lost: { silent: true },
  refusing: {
    reject: {
      statusCode: 403,
      errorCode: 'AccessDeniedException',
      errorMessage: 'Serial SN-9 is not allowed',
    },
  },
};

/** The service user's stand-in (chown needs root: the CI and the test machines run as root). */
const SERVICE = { uid: 4711, gid: 4712 };
const asRoot = process.getuid?.() === 0;

describe('edgegw provision (child process, IoT Core simulator)', function () {
  this.timeout(60_000);
  let id: IdentitySite;

  afterEach(async () => {
    await id.cleanup();
  });

  const provision = (extra: string[]) =>
    runCli([
      'provision',
      '-c',
      id.site.configFile,
      '--claim-cert',
      id.claimCert,
      '--claim-key',
      id.claimKey,
      ...extra,
    ]);

  it('with a CSR: the key is made here, the thing name becomes gateway.id, an audit entry without the key', async () => {
    id = await makeIdentitySite(TEMPLATES, { extra: 'identity: { thingNameAsGatewayId: true }' });
    // As installed: site.yaml root:edgegw 0640, the identity folder the service user's (here run as
    // root, like `sudo edgegw provision`: what it writes must stay the daemon's to read).
    if (asRoot) {
      await chown(id.site.configFile, 0, SERVICE.gid);
      await chown(dirname(id.cert), SERVICE.uid, SERVICE.gid);
    }
    await chmod(id.site.configFile, 0o640);
    const r = await provision(['--template', 'fleet', '--param', 'SerialNumber=SN-1001']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /provisioned thing SN-1001 with template fleet/);
    assert.match(r.stdout, /from a CSR/);
    assert.match(r.stdout, /gateway\.id test-gw1 -> SN-1001/);
    assert.match(r.stdout, /next: .*systemctl restart edgegw/);
    assert.match(r.stdout, /exited 78\b.* is not restarted by systemd on its own/);
    const cert = await readFile(id.cert);
    const key = await readFile(id.key);
    assert.ok(new X509Certificate(cert).checkPrivateKey(createPrivateKey(key)));
    assert.equal((await stat(id.key)).mode & 0o777, 0o600);
    if (asRoot) {
      for (const f of [id.cert, id.key]) {
        const st = await stat(f);
        assert.deepEqual([st.uid, st.gid], [SERVICE.uid, SERVICE.gid], `${f}: the folder's owner`);
      }
      const st = await stat(id.site.configFile);
      assert.deepEqual([st.uid, st.gid, st.mode & 0o777], [0, SERVICE.gid, 0o640], 'site.yaml as it was');
    }
    const [made] = id.sim.certificates;
    assert.equal(id.sim.certificates.length, 1);
    assert.equal(made!.fromCsr, true);
    assert.equal(made!.status, 'ACTIVE');
    assert.equal(made!.thingName, 'SN-1001');
    assert.deepEqual(id.sim.requests, [
      '$aws/certificates/create-from-csr/json',
      '$aws/provisioning-templates/fleet/provision/json',
    ]);
    // The site file now names the thing, and still loads.
    assert.match(await readFile(id.site.configFile, 'utf8'), /^ {2}id: SN-1001$/m);
    const check = await runCli(['check-config', '-c', id.site.configFile]);
    assert.equal(check.code, 0, check.stderr);
    const entry = r.stderr.split('\n').find((l) => l.includes('"audit":"provision"'));
    assert.ok(entry, r.stderr);
    assert.match(entry, /"thingName":"SN-1001"/);
    assert.match(entry, /"csr":true/);
    assert.doesNotMatch(r.stderr + r.stdout, /PRIVATE KEY|BEGIN CERTIFICATE/);
    assert.deepEqual((await readdir(dirname(id.cert))).sort(), ['device.key', 'device.pem']);
  });

  it('without a CSR: AWS makes the key (certificates/create); gateway.id stays when the config does not ask', async () => {
    id = await makeIdentitySite(TEMPLATES);
    const r = await provision(['--template', 'fleet', '--no-csr']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /key made by AWS/);
    assert.deepEqual(id.sim.requests, [
      '$aws/certificates/create/json',
      '$aws/provisioning-templates/fleet/provision/json',
    ]);
    assert.equal(id.sim.certificates[0]!.fromCsr, false);
    const cert = new X509Certificate(await readFile(id.cert));
    assert.ok(cert.checkPrivateKey(createPrivateKey(await readFile(id.key))));
    assert.equal((await stat(id.key)).mode & 0o777, 0o600);
    assert.match(await readFile(id.site.configFile, 'utf8'), /^ {2}id: test-gw1$/m);
  });

  it('a rejected template: its code and message are shown, nothing is written', async () => {
    id = await makeIdentitySite(TEMPLATES);
    const r = await provision(['--template', 'refusing', '--param', 'SerialNumber=SN-9']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /AccessDeniedException 403/);
    assert.match(r.stderr, /Serial SN-9 is not allowed/);
    assert.match(r.stderr, /EDGEGW_E_PROVISION_REJECTED/);
    assert.deepEqual(await readdir(dirname(id.cert)), []);
  });

  it('an unknown template is rejected by the service (ResourceNotFoundException)', async () => {
    id = await makeIdentitySite(TEMPLATES);
    const r = await provision(['--template', 'nosuch']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ResourceNotFoundException 404/);
    assert.deepEqual(await readdir(dirname(id.cert)), []);
  });

  it('a reply that never comes: timeout, and the previous files (replaced with --force) are untouched', async () => {
    id = await makeIdentitySite(TEMPLATES, {
      freshIdentity: false,
      extra: 'identity: { replyTimeout: 700ms }',
    });
    const before = [await readFile(id.cert), await readFile(id.key)];
    id.sim.mode = 'silent';
    const r = await provision(['--template', 'fleet', '--force']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /EDGEGW_E_PROVISION_TIMEOUT/);
    assert.match(r.stderr, /no reply to CreateCertificateFromCsr .* within 0\.7 s/);
    assert.deepEqual([await readFile(id.cert), await readFile(id.key)], before);
    const names = await readdir(dirname(id.cert));
    assert.ok(!names.some((n) => n.endsWith('.next') || n.endsWith('.previous')), names.join(' '));
  });

  it('no reply to RegisterThing (the second request): timeout, and the previous files are untouched', async () => {
    id = await makeIdentitySite(TEMPLATES, {
      freshIdentity: false,
      extra: 'identity: { replyTimeout: 700ms }',
    });
    const before = [await readFile(id.cert), await readFile(id.key)];
    const r = await provision(['--template', 'lost', '--force']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /EDGEGW_E_PROVISION_TIMEOUT/);
    assert.match(r.stderr, /no reply to RegisterThing with template lost .* within 0\.7 s/);
    assert.deepEqual(id.sim.requests, [
      '$aws/certificates/create-from-csr/json',
      '$aws/provisioning-templates/lost/provision/json',
    ]);
    assert.equal(id.sim.certificates[0]!.status, 'PENDING_ACTIVATION', 'made, never registered');
    assert.deepEqual([await readFile(id.cert), await readFile(id.key)], before);
    const names = await readdir(dirname(id.cert));
    assert.ok(!names.some((n) => n.endsWith('.next') || n.endsWith('.previous')), names.join(' '));
  });

  it('a certificate in the reply that is not for the CSR key: refused before registering, nothing written', async () => {
    id = await makeIdentitySite(TEMPLATES);
    id.sim.mode = 'mismatched';
    const r = await provision(['--template', 'fleet']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the reply to CreateCertificateFromCsr holds no certificate for its key/);
    assert.deepEqual(id.sim.requests, ['$aws/certificates/create-from-csr/json']);
    assert.deepEqual(await readdir(dirname(id.cert)), []);
  });

  it('a working identity is never replaced without --force; with it, the old one is kept as .previous', async () => {
    id = await makeIdentitySite(TEMPLATES, { freshIdentity: false });
    const before = await readFile(id.cert);
    const refused = await provision(['--template', 'fleet']);
    assert.equal(refused.code, 73);
    assert.match(refused.stderr, /EDGEGW_E_IDENTITY_EXISTS/);
    assert.deepEqual(await readFile(id.cert), before);
    assert.deepEqual(id.sim.requests, []);

    const forced = await provision(['--template', 'fleet', '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.deepEqual(await readFile(`${id.cert}.previous`), before);
    const now = await readFile(id.cert);
    assert.notDeepEqual(now, before);
    // The new pair belongs together, and its public key is the key file's.
    const pub = createPublicKey(createPrivateKey(await readFile(id.key))).export({
      type: 'spki',
      format: 'der',
    });
    assert.deepEqual(new X509Certificate(now).publicKey.export({ type: 'spki', format: 'der' }), pub);
  });

  it('a group-readable claim key is refused (exit 77) before any connection', async () => {
    id = await makeIdentitySite(TEMPLATES);
    await writeFile(id.claimKey, await readFile(id.claimKey), { mode: 0o640 });
    await chmod(id.claimKey, 0o640);
    const r = await provision(['--template', 'fleet']);
    assert.equal(r.code, 77, r.stderr);
    assert.deepEqual(id.sim.requests, []);
  });

  it('a claim certificate the broker does not trust: the connect error is named, nothing is written', async () => {
    id = await makeIdentitySite(TEMPLATES);
    const stranger = createDemoPki('claim-elsewhere');
    await writeFile(id.claimCert, stranger.clientCert);
    await writeFile(id.claimKey, stranger.clientKey, { mode: 0o600 });
    const r = await provision(['--template', 'fleet']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot connect with the claim certificate: EDGEGW_E_UPLINK_/);
    assert.deepEqual(id.sim.requests, []);
    assert.deepEqual(await readdir(dirname(id.cert)), []);
  });

  it('gateway.id cannot be written after the identity was: exit 73, the audit entry, and what to set by hand', async () => {
    id = await makeIdentitySite(TEMPLATES, { extra: 'identity: { thingNameAsGatewayId: true }' });
    const siteBefore = await readFile(id.site.configFile, 'utf8');
    // The site file's temp file cannot be made (a folder in its way fails even for root).
    await mkdir(`${id.site.configFile}.tmp`);
    const r = await provision(['--template', 'fleet', '--param', 'SerialNumber=SN-2002']);
    assert.equal(r.code, 73, r.stderr);
    assert.match(r.stderr, /EDGEGW_E_PROVISION_GATEWAY_ID/);
    assert.match(
      r.stderr,
      new RegExp(
        `identity written \\(certificate ${id.sim.certificates[0]!.certificateId} of thing SN-2002 .*\\), ` +
          `gateway\\.id not updated in ${id.site.configFile}: \\w+; set it by hand to SN-2002`,
      ),
    );
    // The identity is in place and works; the site file is as it was.
    assert.ok(
      new X509Certificate(await readFile(id.cert)).checkPrivateKey(createPrivateKey(await readFile(id.key))),
    );
    assert.equal(await readFile(id.site.configFile, 'utf8'), siteBefore);
    const entry = r.stderr.split('\n').find((l) => l.includes('"audit":"provision"'));
    assert.ok(entry, r.stderr);
    assert.match(entry, /"thingName":"SN-2002"/);
    assert.match(entry, /"gatewayId":"test-gw1"/);
    assert.match(entry, /"gatewayIdNotUpdated":"\w+"/);
  });

  it('a folder it cannot write: EDGEGW_E_KEY_CREATE (exit 73), naming the registered certificate', async () => {
    id = await makeIdentitySite(TEMPLATES);
    await rm(dirname(id.cert), { recursive: true });
    const r = await provision(['--template', 'fleet']);
    assert.equal(r.code, 73, r.stderr);
    assert.match(r.stderr, /EDGEGW_E_KEY_CREATE/);
    assert.match(r.stderr, new RegExp(`certificate ${id.sim.certificates[0]!.certificateId} is registered`));
  });
});
