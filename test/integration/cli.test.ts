// The real `edgegw` binary in child processes: exit codes (sysexits), refusals, messages.

import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { makeSite, type TestSite } from '../helpers/site.js';
import { createDemoPki } from '../../src/demo/pki.js';

describe('edgegw CLI (child processes)', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgegw-cli-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe('keygen', () => {
    it('writes 32 random bytes with mode 0600', async () => {
      const file = join(dir, 'queue.key');
      const r = await runCli(['keygen', file]);
      assert.equal(r.code, 0, r.stderr);
      const st = await stat(file);
      assert.equal(st.mode & 0o777, 0o600);
      assert.equal((await readFile(file)).length, 32);
      // One `keygen` audit entry (JSON on stderr) naming the file, never its bytes.
      const audits = r.stderr
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((e) => e.audit !== undefined);
      assert.deepEqual(
        audits.map((e) => [e.audit, e.path]),
        [['keygen', file]],
      );
      const key = await readFile(file);
      for (const enc of ['hex', 'base64'] as const) assert.ok(!r.stderr.includes(key.toString(enc)), enc);
      const other = join(dir, 'other.key');
      await runCli(['keygen', other]);
      assert.notDeepEqual(await readFile(file), await readFile(other));
    });

    it('refuses to overwrite an existing file (exit 73) and leaves it untouched', async () => {
      const file = join(dir, 'queue.key');
      await writeFile(file, 'precious');
      const r = await runCli(['keygen', file]);
      assert.equal(r.code, 73);
      assert.match(r.stderr, /queue\.key/);
      assert.doesNotMatch(r.stderr, /"audit"/, 'nothing was generated');
      assert.equal(await readFile(file, 'utf8'), 'precious');
    });

    it('exits 73 when the folder does not exist', async () => {
      const r = await runCli(['keygen', join(dir, 'missing', 'queue.key')]);
      assert.equal(r.code, 73);
    });
  });

  describe('usage', () => {
    it('exits 64 on an unknown command or a missing argument', async () => {
      assert.equal((await runCli(['frobnicate'])).code, 64);
      assert.equal((await runCli(['keygen'])).code, 64);
      assert.equal((await runCli(['run', '--bogus'])).code, 64);
    });

    it('exits 0 for --help and --version', async () => {
      const help = await runCli(['--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /check-config/);
      const version = await runCli(['--version']);
      assert.equal(version.code, 0);
      assert.match(version.stdout, /^\d+\.\d+\.\d+/);
    });
  });

  describe('check-config', () => {
    it('exits 78 and points at file:line:col for invalid YAML values', async () => {
      const file = join(dir, 'site.yaml');
      await writeFile(file, 'gateway:\n  id: ok-gw\n  dataDirr: /tmp\n');
      const r = await runCli(['check-config', '-c', file]);
      assert.equal(r.code, 78);
      assert.match(r.stderr, new RegExp(`${file.replace(/[.]/g, '\\.')}:3:3: gateway\\.dataDirr: .*dataDir`));
    });

    it('honours EDGEGW_CONFIG and names the file when it is missing', async () => {
      const file = join(dir, 'nope.yaml');
      const r = await runCli(['check-config'], { EDGEGW_CONFIG: file });
      assert.equal(r.code, 78);
      assert.match(r.stderr, /nope\.yaml/);
    });
  });

  describe('run refuses insecure private keys (exit 77)', () => {
    let site: TestSite;
    beforeEach(async () => {
      site = await makeSite();
    });
    afterEach(async () => {
      await site.cleanup();
    });

    for (const [what, rel, mode] of [
      ['queue key', 'pki/queue.key', 0o644],
      ['queue key', 'pki/queue.key', 0o640],
      ['TLS key', 'pki/client.key', 0o604],
    ] as const) {
      it(`${what} with mode ${mode.toString(8)}`, async () => {
        const file = join(site.dir, rel);
        await chmod(file, mode);
        const r = await runCli(['run', '-c', site.configFile]);
        assert.equal(r.code, 77, r.stderr);
        assert.ok(r.stderr.includes(file), `message names ${file}: ${r.stderr}`);
        assert.ok(r.stderr.includes(`chmod 600 ${file}`), r.stderr);
        assert.doesNotMatch(r.stderr, /BEGIN|PRIVATE/);
      });
    }
  });

  describe('run refuses unusable TLS files and unusable GPIO with clear errors', () => {
    let site: TestSite;
    beforeEach(async () => {
      site = await makeSite({ sensors: '  - { id: door-1, gpio: { pin: 17 } }' });
    });
    afterEach(async () => {
      await site.cleanup();
    });

    it('a certificate file that is not PEM: exit 78 naming the key and file, no contents', async () => {
      const cert = join(site.dir, 'pki', 'client.pem');
      await writeFile(cert, 'not a certificate\n');
      const r = await runCli(['run', '-c', site.configFile]);
      assert.equal(r.code, 78, r.stderr);
      assert.ok(r.stderr.includes(`uplink.cert ${cert} is not a PEM certificate`), r.stderr);
      assert.doesNotMatch(r.stderr, /not a certificate\n/);
      assert.match(r.stdout, /"level":"fatal".*EDGEGW_E_KEY_READ/, 'the failure is logged with its code');
    });

    it('a private key that does not belong to the certificate: exit 78', async () => {
      const other = createDemoPki('someone-else');
      const key = join(site.dir, 'pki', 'client.key');
      await writeFile(key, other.clientKey, { mode: 0o600 });
      const r = await runCli(['run', '-c', site.configFile]);
      assert.equal(r.code, 78, r.stderr);
      assert.match(r.stderr, /uplink\.key .* does not belong to the certificate uplink\.cert/);
      assert.doesNotMatch(r.stderr, /PRIVATE KEY/);
    });

    // The test machines have no GPIO (DESIGN.md §8), so /sys/class/gpio is missing here.
    it('a GPIO sensor where there is no sysfs GPIO: exit 69 naming the sensor, pin and cause', async () => {
      const r = await runCli(['run', '-c', site.configFile]);
      assert.equal(r.code, 69, r.stderr);
      assert.match(r.stderr, /sensor door-1: sysfs GPIO 17: .*not a Linux GPIO board/);
      assert.match(r.stderr, /EDGEGW_E_GPIO/);
    });
  });

  describe('status', () => {
    it('exits 69 when no daemon answers', async () => {
      const r = await runCli(['status', '--socket', join(dir, 'none.sock')]);
      assert.equal(r.code, 69);
      assert.match(r.stderr, /none\.sock/);
    });
  });
});
