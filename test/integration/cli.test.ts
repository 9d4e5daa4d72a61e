// The real `edgegw` binary in child processes: exit codes (sysexits), refusals, messages.

import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { makeSite, type TestSite } from '../helpers/site.js';

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

  describe('status', () => {
    it('exits 69 when no daemon answers', async () => {
      const r = await runCli(['status', '--socket', join(dir, 'none.sock')]);
      assert.equal(r.code, 69);
      assert.match(r.stderr, /none\.sock/);
    });
  });
});
