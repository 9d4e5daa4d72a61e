// systemd/install.sh into a scratch root (--root DIR: no systemctl, no host users): the whole
// install with its owners and modes, a second run that changes nothing (a listing with modes,
// owners and checksums compared), an existing config and key left alone, then --uninstall (config,
// keys and queue kept) and --purge. Needs root (chown, and a child run as the service user), as CI runs.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const SCRIPT = join(REPO, 'systemd', 'install.sh');

async function install(root: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('bash', [SCRIPT, '--root', root, ...args], { maxBuffer: 1 << 20 });
  return stdout;
}

/** Every entry under `root`: path, type, mode, owner, and a checksum or link target. */
async function listing(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  async function walk(dir: string): Promise<void> {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      const st = await lstat(path);
      const mode = (st.mode & 0o7777).toString(8);
      const id = `${mode} ${st.uid}:${st.gid}`;
      const rel = path.slice(root.length);
      if (st.isSymbolicLink()) out.set(rel, `link ${id} -> ${await readlink(path)}`);
      else if (st.isDirectory()) {
        out.set(rel, `dir ${id}`);
        await walk(path);
      } else {
        out.set(
          rel,
          `file ${id} ${createHash('sha256')
            .update(await readFile(path))
            .digest('hex')}`,
        );
      }
    }
  }
  await walk(root);
  return out;
}

/**
 * In a child process running as uid:gid, what a certificate rotation does in `dir`: write a
 * `.next` file, hard-link the current one to `.previous`, rename `.next` over it. 'ok', or the
 * error code of the first step that failed.
 */
async function rotationAs(uid: number, gid: number, dir: string): Promise<string> {
  const script = `
    const fs = require('node:fs');
    const f = require('node:path').join(process.argv[1], 'edgegw-write-check');
    try {
      fs.writeFileSync(f + '.next', 'new', { mode: 0o600 });
      fs.writeFileSync(f, 'old', { mode: 0o600 });
      fs.linkSync(f, f + '.previous');
      fs.renameSync(f + '.next', f);
      for (const x of [f, f + '.previous']) fs.unlinkSync(x);
      process.stdout.write('ok');
    } catch (err) {
      process.stdout.write(err.code);
    }`;
  const { stdout } = await run(process.execPath, ['-e', script, dir], { uid, gid });
  return stdout;
}

/** uid or gid of `name` in the root's passwd or group file. */
async function idIn(root: string, file: 'passwd' | 'group', name: string): Promise<number | null> {
  const line = (await readFile(join(root, 'etc', file), 'utf8'))
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  return line === undefined ? null : Number(line.split(':')[2]);
}

describe('systemd/install.sh --root (child process)', function () {
  this.timeout(180_000);
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'edgegw-root-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('installs user, folders, config, queue key, program and unit; a second run changes nothing', async () => {
    const out = await install(root);
    assert.match(out, /edgegw doctor/, 'says what to do next');
    assert.match(out, /device\.private\.key/, 'names the certificate files');
    assert.match(out, /no systemctl calls with --root/);
    assert.doesNotMatch(out, /note: site\.yaml keeps uplink/, 'the example points at the identity folder');

    const uid = await idIn(root, 'passwd', 'edgegw');
    const gid = await idIn(root, 'group', 'edgegw');
    assert.ok(uid !== null && uid >= 100 && uid < 1000, 'a system user');
    assert.ok(gid !== null);
    for (const g of ['dialout', 'gpio']) assert.notEqual(await idIn(root, 'group', g), null, g);
    const passwd = await readFile(join(root, 'etc/passwd'), 'utf8');
    assert.match(passwd, /^edgegw:x:\d+:\d+:edgegw gateway:\/var\/lib\/edgegw:\/usr\/sbin\/nologin$/m);

    const l = await listing(root);
    const entry = (p: string) => l.get(p) ?? `missing ${p}`;
    assert.match(entry('/etc/edgegw'), new RegExp(`^dir 750 0:${gid}$`));
    assert.match(entry('/etc/edgegw/tls'), new RegExp(`^dir 750 0:${gid}$`));
    assert.match(entry('/etc/edgegw/site.yaml'), new RegExp(`^file 640 0:${gid} `));
    assert.equal(
      await readFile(join(root, 'etc/edgegw/site.yaml'), 'utf8'),
      await readFile(join(REPO, 'config/example.yaml'), 'utf8'),
    );
    assert.match(entry('/etc/edgegw/tls/queue.key'), new RegExp(`^file 600 ${uid}:${gid} `));
    assert.match(entry('/var/lib/edgegw'), new RegExp(`^dir 700 ${uid}:${gid}$`));
    // Where the example config's rotate-queue-key jobs write (and the unit lets the service write).
    assert.match(entry('/var/lib/edgegw-keys'), new RegExp(`^dir 700 ${uid}:${gid}$`));
    // Where the example config's device certificate and key live (a rotation replaces them there).
    assert.match(entry('/var/lib/edgegw-identity'), new RegExp(`^dir 700 ${uid}:${gid}$`));
    assert.match(entry('/etc/systemd/system/edgegw.service'), /^file 644 0:0 /);
    assert.equal(
      await readFile(join(root, 'etc/systemd/system/edgegw.service'), 'utf8'),
      await readFile(join(REPO, 'systemd/edgegw.service'), 'utf8'),
    );
    assert.match(
      entry('/etc/systemd/system/multi-user.target.wants/edgegw.service'),
      / -> \/etc\/systemd\/system\/edgegw\.service$/,
    );
    assert.match(entry('/usr/local/bin/edgegw'), / -> \/opt\/edgegw\/bin\/edgegw\.js$/);
    assert.match(entry('/opt/edgegw/bin/edgegw.js'), /^file 755 0:0 /);
    assert.match(entry('/opt/edgegw/dist/src/cli/main.js'), /^file 644 0:0 /);
    assert.match(entry('/opt/edgegw/dist/bundle/main.js'), /^file 644 0:0 /); // what bin/edgegw.js runs
    assert.ok(l.has('/opt/edgegw/node_modules/level/package.json'), 'production dependencies');
    assert.ok(!l.has('/opt/edgegw/node_modules/mocha'), 'no development dependencies');
    assert.ok(![...l.keys()].some((p) => p.startsWith('/opt/edgegw/dist/test')), 'no tests');

    // The installed program runs on its own dependencies (it made the key; it reads a config).
    const help = await run(process.execPath, [join(root, 'opt/edgegw/bin/edgegw.js'), '--help']);
    assert.match(help.stdout, /doctor|check-config/);

    const again = await install(root);
    assert.match(again, /up to date/);
    assert.doesNotMatch(again, /queue key created|example config written|unit installed/);
    assert.deepEqual(await listing(root), l, 'the second run changed nothing');

    // The service user can do there what a rotation does (write .next, link .previous, rename);
    // in /etc/edgegw/tls it cannot (read-only to it, and under ProtectSystem=strict).
    await chmod(root, 0o755); // mkdtemp's 0700 would stop the user at the root itself
    const asService = (dir: string) => rotationAs(uid, gid, join(root, dir));
    assert.equal(await asService('var/lib/edgegw-identity'), 'ok');
    assert.equal(await asService('etc/edgegw/tls'), 'EACCES');
  });

  it('never overwrites an existing config or queue key', async () => {
    await mkdir(join(root, 'etc/edgegw/tls'), { recursive: true });
    await writeFile(join(root, 'etc/edgegw/site.yaml'), '# this site\n');
    await writeFile(join(root, 'etc/edgegw/tls/queue.key'), 'k'.repeat(64), { mode: 0o600 });
    const out = await install(root);
    assert.doesNotMatch(out, /queue key created|example config written/);
    assert.equal(await readFile(join(root, 'etc/edgegw/site.yaml'), 'utf8'), '# this site\n');
    assert.equal(await readFile(join(root, 'etc/edgegw/tls/queue.key'), 'utf8'), 'k'.repeat(64));
  });

  it('an older site.yaml with the identity under /etc/edgegw: kept as it is, with a note on moving it', async () => {
    await mkdir(join(root, 'etc/edgegw'), { recursive: true });
    const site =
      'uplink:\n  ca: tls/AmazonRootCA1.pem\n  cert: tls/device.pem.crt\n  key: "tls/device.private.key"\n';
    await writeFile(join(root, 'etc/edgegw/site.yaml'), site);
    const out = await install(root);
    assert.match(out, /note: site\.yaml keeps uplink\.cert\/uplink\.key under \/etc\/edgegw/);
    assert.match(out, /move both files to \/var\/lib\/edgegw-identity\//);
    assert.equal(await readFile(join(root, 'etc/edgegw/site.yaml'), 'utf8'), site);
  });

  it('--uninstall removes unit and program, keeps config, keys and queue; --purge removes those too', async () => {
    await install(root);
    await writeFile(join(root, 'var/lib/edgegw/000003.log'), 'sealed records');
    const before = await listing(root);

    const out = await install(root, '--uninstall');
    assert.match(out, /kept: \/etc\/edgegw/);
    const after = await listing(root);
    for (const gone of [
      '/opt/edgegw',
      '/etc/systemd/system/edgegw.service',
      '/etc/systemd/system/multi-user.target.wants/edgegw.service',
      '/usr/local/bin/edgegw',
    ]) {
      assert.ok(!after.has(gone), `${gone} removed`);
    }
    for (const kept of [
      '/etc/edgegw/site.yaml',
      '/etc/edgegw/tls/queue.key',
      '/var/lib/edgegw/000003.log',
      '/var/lib/edgegw-identity',
    ]) {
      assert.equal(after.get(kept), before.get(kept), `${kept} kept as it was`);
    }
    assert.notEqual(await idIn(root, 'passwd', 'edgegw'), null, 'the user stays (it owns the kept files)');
    await install(root, '--uninstall'); // again: nothing left to remove, no error
    assert.deepEqual(await listing(root), after);

    const purged = await install(root, '--purge');
    assert.match(purged, /removed/);
    const left = await listing(root);
    for (const gone of [
      '/etc/edgegw',
      '/var/lib/edgegw',
      '/var/lib/edgegw-keys',
      '/var/lib/edgegw-identity',
    ]) {
      assert.ok(!left.has(gone), `${gone} purged`);
    }
    assert.equal(await idIn(root, 'passwd', 'edgegw'), null);
    assert.equal(await idIn(root, 'group', 'edgegw'), null);
    assert.notEqual(await idIn(root, 'group', 'dialout'), null, 'shared groups stay');
  });
});
