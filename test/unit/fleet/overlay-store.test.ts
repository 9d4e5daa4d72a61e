// The stored remote overlay (src/fleet/overlay-store.ts) on real files with real libsodium: sealed
// with the current queue key, opened with any key of the keyring, and refused (EDGEGW_E_FLEET_OVERLAY)
// when altered, sealed by a key no key file holds, in the plain format of an earlier build, or not
// private.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  overlayPath,
  readOverlay,
  writeOverlay,
  type StoredOverlay,
} from '../../../src/fleet/overlay-store.js';
import { Keyring } from '../../../src/seal/keyring.js';
import { EdgegwError } from '../../../src/errors.js';

const STORED: StoredOverlay = {
  shadow: 'edgegw',
  shadowVersion: 7,
  appliedAt: 1_700_000_000_000,
  overlay: { 'queue.flush': '5s', sensors: [{ id: 'c2', sim: { wave: 'counter' }, every: '1s' }] },
  tried: null,
};

describe('fleet overlay store (sealed with the queue keys)', () => {
  let dir: string;
  const key = (file: string) => ({ key: randomBytes(32), file });
  const k1 = key('/keys/one.key');
  const k2 = key('/keys/two.key');
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgegw-overlay-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const refused = async (keys: Keyring, why: RegExp): Promise<void> => {
    await assert.rejects(
      readOverlay(dir, () => Promise.resolve(keys)),
      (err: unknown) => {
        assert.ok(err instanceof EdgegwError);
        assert.equal(err.code, 'EDGEGW_E_FLEET_OVERLAY');
        assert.match(err.message, why);
        return true;
      },
    );
  };

  it('round-trips, sealed: no overlay value is readable in the file', async () => {
    const ring = await Keyring.fromKeys(k1);
    // No file: the keys are not even read.
    const unreadable = () => Promise.reject(new Error('EDGEGW_E_KEY_READ: queue.keyFile is mode 644'));
    assert.equal(await readOverlay(dir, unreadable), null);
    await writeOverlay(dir, STORED, ring);
    assert.deepEqual(await readOverlay(dir, () => Promise.resolve(ring)), STORED);
    // The file holds a format name and the sealed bytes, nothing else. The values are looked for in
    // the decoded bytes, not in the base64 text: a short value such as "c2" turns up in random
    // base64 about one time in ten, while a 4-byte run in ~300 random bytes does one time in ten
    // million.
    const body = JSON.parse(await readFile(overlayPath(dir), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ['format', 'sealed']);
    const sealed = Buffer.from(body['sealed'] as string, 'base64');
    assert.ok(sealed.length > JSON.stringify(STORED.overlay).length);
    for (const value of ['queue.flush', '"c2"', 'counter', '"5s"', 'edgegw']) {
      assert.equal(sealed.includes(value), false, `${value} readable in the sealed bytes`);
    }
  });

  it('opens with a previous key after a rotation; refused when no key file holds the key', async () => {
    await writeOverlay(dir, STORED, await Keyring.fromKeys(k1));
    assert.deepEqual(await readOverlay(dir, () => Keyring.fromKeys(k2, [k1])), STORED);
    await refused(await Keyring.fromKeys(k2), /sealed with key id [0-9a-f]{32}, which no key file holds/);
    await assert.rejects(
      readOverlay(dir, () => Promise.reject(new Error('mode 644'))),
      {
        code: 'EDGEGW_E_FLEET_OVERLAY',
        message: /cannot be opened: the queue keys could not be read \(mode 644\); it is ignored/,
      },
    );
  });

  it('one byte flipped anywhere in the sealed content is refused', async () => {
    const ring = await Keyring.fromKeys(k1);
    await writeOverlay(dir, STORED, ring);
    const body = JSON.parse(await readFile(overlayPath(dir), 'utf8')) as { sealed: string };
    const sealed = Buffer.from(body.sealed, 'base64');
    // The key id, the nonce, the ciphertext and the tag.
    for (const at of [3, 20, 50, sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[at]! ^= 0x01;
      await writeFile(overlayPath(dir), JSON.stringify({ ...body, sealed: bad.toString('base64') }), {
        mode: 0o600,
      });
      await refused(
        ring,
        /does not open with the queue keys: it (failed authentication|was sealed with key id)/,
      );
    }
  });

  it('refuses the plain format of an earlier build, and a file open to others', async () => {
    const ring = await Keyring.fromKeys(k1);
    await writeFile(overlayPath(dir), JSON.stringify(STORED), { mode: 0o600 });
    await refused(ring, /plain format of an earlier edgegw, which is not authenticated; it is ignored/);
    await writeOverlay(dir, STORED, ring);
    await chmod(overlayPath(dir), 0o644);
    await refused(ring, /is not a private file of this user \(mode 644\)/);
  });
});
