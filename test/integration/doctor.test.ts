// `edgegw doctor` as a technician runs it: the real binary in a child process, a real TLS broker,
// real files. A good site passes every check (exit 0); each broken site fails the one check that
// names its cause (exit 1); doctor beside a running daemon leaves it connected and its queue alone.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { createDemoPki, type Validity } from '../../src/demo/pki.js';
import type { CheckLine } from '../../src/doctor/check.js';
import { runCli, startCli, type CliResult } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { makeSite, waitFor, type TestSite } from '../helpers/site.js';

/**
 * The test machine has no systemd as PID 1, so its timedatectl cannot answer: a stand-in on PATH
 * answers as systemd's does on a synchronised gateway (the "cannot tell" case is a unit test).
 */
async function syncedPath(): Promise<{ env: NodeJS.ProcessEnv; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'edgegw-doctor-bin-'));
  const script = join(dir, 'timedatectl');
  await writeFile(script, '#!/bin/sh\nprintf "NTP=yes\\nNTPSynchronized=yes\\n"\n');
  await chmod(script, 0o755);
  return { env: { PATH: `${dir}${delimiter}${process.env.PATH ?? ''}` }, dir };
}

async function doctor(site: TestSite, env: NodeJS.ProcessEnv): Promise<{ r: CliResult; lines: CheckLine[] }> {
  const r = await runCli(['doctor', '--json', '-c', site.configFile], env);
  return { r, lines: JSON.parse(r.stdout) as CheckLine[] };
}

function line(lines: CheckLine[], check: string): CheckLine {
  const l = lines.find((x) => x.check === check);
  assert.ok(l, `no line ${check} in ${JSON.stringify(lines.map((x) => x.check))}`);
  return l;
}

async function editConfig(site: TestSite, from: string | RegExp, to: string): Promise<void> {
  const text = await readFile(site.configFile, 'utf8');
  const next = text.replace(from, to);
  assert.notEqual(next, text, 'the edit applies');
  await writeFile(site.configFile, next);
}

/** A device certificate and key of another, throwaway CA with this validity, over the site's. */
async function replaceClientCert(site: TestSite, validity: Validity): Promise<void> {
  const other = createDemoPki('test-gw1', { clientValidity: validity });
  await writeFile(join(site.dir, 'pki', 'client.pem'), other.clientCert);
  await writeFile(join(site.dir, 'pki', 'client.key'), other.clientKey);
}

/** Every file of a folder: name, size, mtime and content hash. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const st = await stat(join(dir, name));
    const hash = createHash('sha256')
      .update(await readFile(join(dir, name)))
      .digest('hex');
    out.push(`${name} ${st.size} ${st.mtimeMs} ${hash}`);
  }
  return out;
}

describe('edgegw doctor (child processes, real broker)', function () {
  this.timeout(60_000);
  let site: TestSite;
  let synced: { env: NodeJS.ProcessEnv; dir: string };
  beforeEach(async () => {
    // doctor runs back to back here under one client id, which IoT Core's one CONNECT per second
    // per client id refuses: that rule is off, the others stay on.
    site = await makeSite({ iotcore: { connectIntervalMs: 1 } });
    synced = await syncedPath();
  });
  afterEach(async () => {
    await site.cleanup();
    await rm(synced.dir, { recursive: true, force: true });
  });

  it('a good site: every check PASS, exit 0, one line per check, no secret', async () => {
    const { r, lines } = await doctor(site, synced.env);
    assert.equal(r.code, 0, r.stdout);
    for (const l of lines) assert.equal(l.result, 'PASS', `${l.check}: ${l.found}`);
    for (const c of ['config', 'clock', 'clock sync', 'key mode queue.keyFile', 'key mode uplink.key'])
      line(lines, c);
    for (const c of ['certificate', 'certificate key', 'certificate validity', 'certificate days left', 'ca'])
      line(lines, c);
    for (const c of ['data dir', 'status socket folder', 'serial', 'gpio']) line(lines, c);
    for (const c of ['broker dns', 'broker tcp', 'broker tls', 'broker mqtt']) line(lines, c);
    assert.match(line(lines, 'broker mqtt').found, /test-gw1-doctor/);

    const text = await runCli(['doctor', '-c', site.configFile], synced.env);
    assert.equal(text.code, 0);
    assert.equal(text.stdout.split('\n').filter((l) => l.startsWith('PASS  ')).length, lines.length);
    const secrets = [
      (await readFile(join(site.dir, 'pki', 'client.key'), 'utf8')).split('\n')[1]!,
      (await readFile(join(site.dir, 'pki', 'queue.key'))).toString('hex').slice(0, 16),
      (await readFile(join(site.dir, 'pki', 'queue.key'))).toString('base64').slice(0, 16),
    ];
    for (const out of [r.stdout, text.stdout, text.stderr])
      for (const s of secrets) assert.ok(!out.includes(s), 'no key material in the output');
  });

  it('a private key of mode 0644: FAIL with chmod 600 as the fix', async () => {
    const key = join(site.dir, 'pki', 'client.key');
    await chmod(key, 0o644);
    const { r, lines } = await doctor(site, synced.env);
    assert.equal(r.code, 1);
    const l = line(lines, 'key mode uplink.key');
    assert.equal(l.result, 'FAIL');
    assert.match(l.found, /mode 0644/);
    assert.equal(l.fix, `chmod 600 ${key}`);
    assert.equal(line(lines, 'key mode queue.keyFile').result, 'PASS');
  });

  it('an expired device certificate: FAIL, exit 1', async () => {
    await replaceClientCert(site, { fromDays: -60, toDays: -2 });
    const { r, lines } = await doctor(site, synced.env);
    assert.equal(r.code, 1);
    const l = line(lines, 'certificate validity');
    assert.equal(l.result, 'FAIL');
    assert.match(l.found, /^expired on \d{4}-\d\d-\d\d/);
    assert.match(l.fix, /rotate-certificate/);
    assert.equal(line(lines, 'certificate key').result, 'PASS', 'the key still matches');
  });

  it("a not-yet-valid device certificate: FAIL that points at the gateway's clock", async () => {
    await replaceClientCert(site, { fromDays: 3, toDays: 400 });
    const { r, lines } = await doctor(site, synced.env);
    assert.equal(r.code, 1);
    const l = line(lines, 'certificate validity');
    assert.equal(l.result, 'FAIL');
    assert.match(l.found, /not valid before .*probably the gateway's clock/);
    assert.match(l.fix, /timedatectl set-ntp true/);
  });

  it('a wrong CA: DNS and TCP pass, the TLS line fails on verification, MQTT is skipped', async () => {
    await writeFile(join(site.dir, 'pki', 'ca.pem'), createDemoPki('other').caCert);
    const { r, lines } = await doctor(site, synced.env);
    assert.equal(r.code, 1);
    assert.equal(line(lines, 'ca').result, 'PASS', 'the file itself parses');
    assert.equal(line(lines, 'broker dns').result, 'PASS');
    assert.equal(line(lines, 'broker tcp').result, 'PASS');
    const tls = line(lines, 'broker tls');
    assert.equal(tls.result, 'FAIL');
    assert.match(tls.found, /does not verify against uplink\.ca/);
    assert.ok(!lines.some((l) => l.check === 'broker mqtt'));
    assert.match(line(lines, 'broker').found, /skipped mqtt/);
  });

  it('a closed port: DNS passes, TCP fails with ECONNREFUSED', async () => {
    const port = await freePort();
    await editConfig(site, /url: mqtts:\/\/localhost:\d+/, `url: mqtts://localhost:${port}`);
    const { r, lines } = await doctor(site, synced.env);
    assert.equal(r.code, 1);
    assert.equal(line(lines, 'broker dns').result, 'PASS');
    const tcp = line(lines, 'broker tcp');
    assert.equal(tcp.result, 'FAIL');
    assert.match(tcp.found, new RegExp(`localhost:${port}: connection failed \\(ECONNREFUSED\\)`));
    assert.match(tcp.fix, /firewall/);
    assert.match(line(lines, 'broker').found, /skipped tls, mqtt/);
  });

  it('an unresolvable host (RFC 2606 .invalid): the DNS line fails, nothing after it is tried', async () => {
    await editConfig(site, /url: mqtts:\/\/localhost:\d+/, 'url: mqtts://broker.edgegw.invalid:8883');
    const { r, lines } = await doctor(site, synced.env);
    assert.equal(r.code, 1);
    const dns = line(lines, 'broker dns');
    assert.equal(dns.result, 'FAIL');
    assert.match(dns.found, /broker\.edgegw\.invalid does not resolve/);
    assert.ok(!lines.some((l) => l.check === 'broker tcp'));
  });

  it('a config error: FAIL with the FILE:LINE:COL lines, the checks that need it skipped', async () => {
    await editConfig(site, 'flush: 100ms', 'flush: 100 parsecs');
    const r = await runCli(['doctor', '-c', site.configFile], synced.env);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^FAIL {2}config: \d+ errors?:$/m);
    assert.ok(r.stdout.includes(`${site.configFile}:`), r.stdout);
    assert.match(r.stdout, /site\.yaml:\d+:\d+: queue\.flush: /);
    assert.match(r.stdout, /^WARN {2}other checks: skipped: keys, certificate/m);
    assert.match(r.stdout, /^PASS {2}clock: /m, 'the clock needs no config');
    assert.doesNotMatch(r.stdout, /^(PASS|WARN|FAIL) {2}broker/m, 'no broker step was tried');
  });

  it('an IoT policy that allows only the thing name: WARN that explains it, exit 0', async () => {
    // As IoT Core does when iot:Connect is denied: the connection is closed, no CONNACK.
    site.broker.aedes.preConnect = (_client, packet, done) =>
      done(packet.clientId.endsWith('-doctor') ? new Error('iot:Connect denied') : null, true);
    const { r, lines } = await doctor(site, synced.env);
    assert.equal(r.code, 0, r.stdout);
    const mqtt = line(lines, 'broker mqtt');
    assert.equal(mqtt.result, 'WARN');
    assert.match(
      mqtt.found,
      /refused client id test-gw1-doctor: an IoT policy that allows only the thing name/,
    );
    assert.match(mqtt.fix, /allow iot:Connect for client id test-gw1-doctor/);

    // A broker that answers CONNACK "not authorized" (code 5) is read the same way.
    site.broker.aedes.preConnect = (_client, _packet, done) => done(null, true);
    site.broker.aedes.authenticate = (client, _u, _p, done) =>
      client.id.endsWith('-doctor')
        ? done(Object.assign(new Error('not authorized'), { returnCode: 5 as const }), false)
        : done(null, true);
    const coded = line((await doctor(site, synced.env)).lines, 'broker mqtt');
    assert.equal(coded.result, 'WARN');
    assert.match(coded.found, /CONNACK code 5/);
  });

  it('beside a running daemon: the daemon stays connected, and doctor never touches the queue', async () => {
    const connects: string[] = [];
    const disconnects: string[] = [];
    site.broker.aedes.on('client', (c) => connects.push(c.id));
    site.broker.aedes.on('clientDisconnect', (c) => disconnects.push(c.id));
    const daemon = startCli(['run', '-c', site.configFile]);
    try {
      await waitFor(() => site.broker.published.messages > 0, 20_000, 'the daemon publishing');
      const { r, lines } = await doctor(site, synced.env);
      assert.equal(r.code, 0, r.stdout);
      assert.equal(line(lines, 'broker mqtt').result, 'PASS');
      assert.match(line(lines, 'data dir').found, /in use by the running daemon/);
      assert.deepEqual(
        connects.filter((id) => id === 'test-gw1'),
        ['test-gw1'],
        'the daemon connected once',
      );
      assert.deepEqual(
        connects.filter((id) => id === 'test-gw1-doctor'),
        ['test-gw1-doctor'],
      );
      assert.ok(!disconnects.includes('test-gw1'), 'no takeover: the daemon was never disconnected');
      const before = site.broker.published.messages;
      await waitFor(() => site.broker.published.messages > before, 10_000, 'the daemon still publishing');
    } finally {
      daemon.child.kill('SIGTERM');
      assert.equal((await daemon.done).code, 0);
    }
    const data = join(site.dir, 'data');
    const before = await snapshot(data);
    const { r } = await doctor(site, synced.env);
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(await snapshot(data), before, 'no file of the queue changed (LevelDB never opened)');
  });
});
