// Retiring rotated queue keys (queue-key-rotation.ts) beside a stored fleet overlay: the key that
// sealed the overlay is kept, even when no record needs it, so the overlay still opens at the next
// start (offline); once the overlay is stored under a newer key, the older one is retired. Real
// key files, real libsodium, the real overlay store.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { SiteConfig } from '../../src/config/schema.js';
import { readOverlay, writeOverlay, type StoredOverlay } from '../../src/fleet/overlay-store.js';
import type { SealedQueue } from '../../src/queue/sealed-queue.js';
import { QueueKeyRotation } from '../../src/queue-key-rotation.js';
import { writeNewKeyFile } from '../../src/seal/keyfile.js';
import { keyFileId, loadQueueKeyring, rotateKey } from '../../src/seal/rotated-keys.js';

describe('queue key retirement beside a stored fleet overlay', () => {
  let root: string;
  let site: SiteConfig;
  const stored: StoredOverlay = {
    shadow: 'edgegw',
    shadowVersion: 4,
    appliedAt: 1_764_380_000_000,
    overlay: { 'log.level': 'debug' },
    tried: null,
  };
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'edgegw-qkr-'));
    await mkdir(join(root, 'data'), { mode: 0o700 });
    await writeNewKeyFile(join(root, 'queue.key'));
    site = {
      gateway: { id: 'gw', dataDir: join(root, 'data') },
      queue: { keyFile: join(root, 'queue.key'), previousKeyFiles: [], rotatedKeysDir: join(root, 'keys') },
    } as unknown as SiteConfig;
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** The rotation stage at a start whose queue holds no record sealed with any older key. */
  async function startWithEmptyQueue() {
    const keyring = await loadQueueKeyring(site.queue);
    const queue = { keyRanges: () => [] } as unknown as SealedQueue;
    const rotation = new QueueKeyRotation({
      keyring,
      queue,
      site: () => site,
      log: pino({ level: 'silent' }),
    });
    await rotation.retireUnused();
    return keyring;
  }

  it('keeps the key that sealed the overlay; retires it once the overlay is stored under a newer one', async () => {
    const dir = site.queue.rotatedKeysDir!;
    const base = await keyFileId(site.queue.keyFile);
    const k1 = await rotateKey(dir, base);
    await writeOverlay(site.gateway.dataDir, stored, await loadQueueKeyring(site.queue));
    const k2 = await rotateKey(dir, base);

    const ring = await startWithEmptyQueue();
    assert.ok(existsSync(join(dir, `${k1}.key`)), 'the overlay key is kept');
    assert.ok(!existsSync(join(dir, 'retired', `${k1}.key`)));
    const opened = await readOverlay(site.gateway.dataDir, () => Promise.resolve(ring));
    assert.deepEqual(opened?.overlay, stored.overlay, 'the overlay still opens');

    // Stored again (the next remote change): now sealed with k2, and k1 goes at the next start.
    await writeOverlay(site.gateway.dataDir, stored, ring);
    const after = await startWithEmptyQueue();
    assert.ok(existsSync(join(dir, 'retired', `${k1}.key`)), 'k1 retired');
    assert.equal(after.currentId, k2);
    assert.deepEqual(
      (await readOverlay(site.gateway.dataDir, () => loadQueueKeyring(site.queue)))?.overlay,
      stored.overlay,
    );
  });
});
