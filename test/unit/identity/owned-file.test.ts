// What `sudo edgegw provision` writes stays readable by the daemon's user: run as root (as CI and
// the test machines run), a new identity file takes the owner of the file it replaces, else of
// its folder, and a rewritten site.yaml keeps its owner, group and mode. On real files.

import assert from 'node:assert/strict';
import { chown, mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDemoPki } from '../../../src/demo/pki.js';
import { commitNext, writeNext, type IdentityPaths } from '../../../src/identity/files.js';
import { replaceKeepingOwner } from '../../../src/identity/owned-file.js';

/** Ids no file here belongs to: the service user's and group's stand-ins. */
const SERVICE = { uid: 4711, gid: 4712 };
const OTHER = { uid: 4811, gid: 4812 };

describe('identity files written as root keep the owner the daemon needs', function () {
  this.timeout(20_000);
  const pki = createDemoPki('gw-owner');
  let dir: string;
  let p: IdentityPaths;

  before(function () {
    // chown to another user needs root; the CI and the test machines run as root.
    if (process.getuid?.() !== 0) this.skip();
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgegw-owner-'));
    p = { cert: join(dir, 'device.pem'), key: join(dir, 'device.key') };
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const owner = async (file: string) => {
    const st = await stat(file);
    return { uid: st.uid, gid: st.gid, mode: st.mode & 0o777 };
  };

  it('a first identity takes the owner and group of its folder; the key stays 0600', async () => {
    await chown(dir, SERVICE.uid, SERVICE.gid);
    await writeNext(p, pki.clientCert, pki.clientKey);
    await commitNext(p);
    assert.deepEqual(await owner(p.key), { ...SERVICE, mode: 0o600 });
    assert.deepEqual(await owner(p.cert), { ...SERVICE, mode: 0o644 });
  });

  it('a replacing identity takes the owner of the files it replaces, not the folder’s', async () => {
    await chown(dir, SERVICE.uid, SERVICE.gid);
    await writeFile(p.cert, 'old certificate');
    await writeFile(p.key, 'old key', { mode: 0o600 });
    await chown(p.cert, OTHER.uid, OTHER.gid);
    await chown(p.key, OTHER.uid, OTHER.gid);
    await writeNext(p, pki.clientCert, pki.clientKey);
    assert.deepEqual(await owner(`${p.key}.next`), { ...OTHER, mode: 0o600 });
    assert.deepEqual(await owner(`${p.cert}.next`), { ...OTHER, mode: 0o644 });
    await commitNext(p);
    assert.deepEqual(await owner(p.key), { ...OTHER, mode: 0o600 });
    assert.equal(await readFile(`${p.key}.previous`, 'utf8'), 'old key');
  });

  it('a rewritten site.yaml keeps its owner, group and mode', async () => {
    const site = join(dir, 'site.yaml');
    await writeFile(site, 'gateway:\n  id: a\n');
    await chown(site, 0, SERVICE.gid);
    await chmod(site, 0o640);
    await replaceKeepingOwner(site, 'gateway:\n  id: b\n');
    assert.deepEqual(await owner(site), { uid: 0, gid: SERVICE.gid, mode: 0o640 });
    assert.equal(await readFile(site, 'utf8'), 'gateway:\n  id: b\n');
  });
});
