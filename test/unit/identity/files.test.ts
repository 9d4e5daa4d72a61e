// The identity files' commit and the recovery at start, on real files: every state a crash can
// leave between two steps of a commit (files.ts) settles on a certificate and key that belong
// together, and on the new pair only when the commit had begun renaming.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, rm, stat, writeFile, link } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDemoPki } from '../../../src/demo/pki.js';
import {
  commitNext,
  pairMatches,
  recoverIdentity,
  writeNext,
  type IdentityPaths,
} from '../../../src/identity/files.js';

describe('identity files: commit and recovery at start', function () {
  this.timeout(20_000);
  const oldPki = createDemoPki('gw-old');
  const newPki = createDemoPki('gw-new');
  let dir: string;
  let p: IdentityPaths;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgegw-identity-'));
    p = { cert: join(dir, 'device.pem'), key: join(dir, 'device.key') };
    await writeFile(p.cert, oldPki.clientCert);
    await writeFile(p.key, oldPki.clientKey, { mode: 0o600 });
    await writeNext(p, newPki.clientCert, newPki.clientKey);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const current = async () => [await readFile(p.cert, 'utf8'), await readFile(p.key, 'utf8')];

  it('a commit puts the new pair in place and keeps the old one as .previous, key mode 0600', async () => {
    await commitNext(p);
    assert.deepEqual(await current(), [newPki.clientCert, newPki.clientKey]);
    assert.equal(await readFile(`${p.cert}.previous`, 'utf8'), oldPki.clientCert);
    assert.equal(await readFile(`${p.key}.previous`, 'utf8'), oldPki.clientKey);
    assert.equal((await stat(p.key)).mode & 0o777, 0o600);
    assert.equal(await recoverIdentity(p), 'none');
  });

  it('crash before the commit (unproven .next): the old pair stays, .next is removed', async () => {
    assert.equal(await recoverIdentity(p), 'discarded-next');
    assert.deepEqual(await current(), [oldPki.clientCert, oldPki.clientKey]);
    await assert.rejects(stat(`${p.cert}.next`));
    await assert.rejects(stat(`${p.key}.next`));
  });

  it('crash between the two renames: the commit is finished on the new pair', async () => {
    await link(p.cert, `${p.cert}.previous`);
    await link(p.key, `${p.key}.previous`);
    await rename(`${p.key}.next`, p.key);
    assert.equal(await pairMatches(p.cert, p.key), false);
    assert.equal(await recoverIdentity(p), 'completed-commit');
    assert.deepEqual(await current(), [newPki.clientCert, newPki.clientKey]);
  });

  it('a pair that does not match, with no .next to finish it: the .previous pair is restored', async () => {
    await commitNext(p);
    await writeFile(p.cert, oldPki.serverCert); // damaged by hand, say
    assert.equal(await recoverIdentity(p), 'restored-previous');
    assert.deepEqual(await current(), [oldPki.clientCert, oldPki.clientKey]);
  });
});
