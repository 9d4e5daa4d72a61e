// Keys made by rotate-queue-key jobs (queue.rotatedKeysDir): the newest seals, the others open;
// retired ones (moved to retired/) are never loaded again; a file outside the folder (the site
// file's queue.keyFile) is never moved. Real files, real libsodium.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeNewKeyFile } from '../../../src/seal/keyfile.js';
import { keyFileId, loadQueueKeyring, retireKeyFiles, rotateKey } from '../../../src/seal/rotated-keys.js';

describe('seal/rotated-keys', () => {
  let root: string;
  let keyFile: string;
  let dir: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'edgegw-rot-'));
    keyFile = join(root, 'queue.key');
    dir = join(root, 'keys');
    await writeNewKeyFile(keyFile);
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('the newest rotated key seals; a retired one is no longer loaded; queue.keyFile is never moved', async () => {
    const base = await keyFileId(keyFile);
    const k1 = await rotateKey(dir, base);
    const k2 = await rotateKey(dir, base);
    const q = { keyFile, previousKeyFiles: [], rotatedKeysDir: dir };
    const ring = await loadQueueKeyring(q);
    assert.equal(ring.currentId, k2);
    assert.deepEqual([...ring.files().keys()].sort(), [base, k1, k2].sort());

    // Only the file inside the folder moves: the site file's key stays where it names it.
    const moved = await retireKeyFiles(dir, [join(dir, `${k1}.key`), keyFile]);
    assert.deepEqual(moved, [join(dir, `${k1}.key`)]);
    assert.ok(existsSync(keyFile));
    assert.ok(!existsSync(join(dir, `${k1}.key`)));
    assert.equal((await stat(join(dir, 'retired', `${k1}.key`))).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'retired'))).mode & 0o777, 0o700);
    const after = await loadQueueKeyring(q);
    assert.equal(after.currentId, k2);
    assert.deepEqual([...after.files().keys()].sort(), [base, k2].sort());
  });
});
