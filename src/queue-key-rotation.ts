// The rotate-queue-key job while the daemon runs (issue 11), wired between the seal stage's keys
// and the queue: a new key is written to queue.rotatedKeysDir (durably, with current.json naming
// it, so every later start seals with it), then the running queue seals with it from its next
// record (SealedQueue.switchKey writes the key's range first). Records sealed before keep opening
// with their own key. A rotated key whose records are all gone is retired: moved to
// rotatedKeysDir/retired/ at start and as soon as the queue reports it drained. queue.keyFile and
// queue.previousKeyFiles are never moved: the site file names them, and neither is the key that
// sealed the stored fleet overlay (it must open at the next start, even offline): that one is
// retired at a start after the overlay was stored again under a newer key.

import { join, resolve, sep } from 'node:path';
import type { Logger } from 'pino';
import type { SiteConfig } from './config/schema.js';
import type { QueueKeys } from './queue/key-ranges.js';
import type { SealedQueue } from './queue/sealed-queue.js';
import { Keyring } from './seal/keyring.js';
import { keyFileId, retireKeyFiles, rotateKey } from './seal/rotated-keys.js';
import { JobFailure } from './fleet/operations.js';
import { overlaySealingKeyId } from './fleet/overlay-store.js';
import { errorText } from './reload-apply.js';

export interface QueueKeyRotationDeps {
  keyring: Keyring;
  queue: SealedQueue;
  /** The running configuration (its queue keys apply from a start: they do not change live). */
  site: () => SiteConfig;
  log: Logger;
}

/** What the queue is told about the keyring (key-ranges.ts). */
export function queueKeysOf(keyring: Keyring): QueueKeys {
  return {
    current: keyring.currentId,
    files: keyring.files(),
    identify: (rec, salts) => keyring.identify(rec, salts),
  };
}

export class QueueKeyRotation {
  /** Rotations and retirements run one at a time. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: QueueKeyRotationDeps) {}

  /** The job: a new key sealing from the queue's next seq; its key id and that seq. */
  rotate(): Promise<{ keyId: string; fromSeq: number }> {
    return this.serial(() => this.rotateNow());
  }

  /** At start, once the queue settled its key ranges: retires rotated keys nothing needs. */
  retireUnused(): Promise<void> {
    return this.serial(async () => {
      const live = new Set(this.deps.queue.keyRanges().map((r) => r.id));
      live.add(this.deps.keyring.currentId);
      await this.retireNow([...this.deps.keyring.files().keys()].filter((id) => !live.has(id)));
    });
  }

  /** The queue forgot these keys (their records drained): their rotated files are retired. */
  retired(ids: readonly string[]): void {
    void this.serial(() => this.retireNow(ids));
  }

  private async rotateNow(): Promise<{ keyId: string; fromSeq: number }> {
    const { keyring, queue, log } = this.deps;
    const { queue: q, gateway } = this.deps.site();
    const dir = q.rotatedKeysDir;
    if (dir === undefined) {
      throw new JobFailure('queue.rotatedKeysDir is not set: there is no folder to write the new key to');
    }
    if (`${resolve(dir)}${sep}`.startsWith(`${resolve(gateway.dataDir)}${sep}`)) {
      throw new JobFailure(
        'queue.rotatedKeysDir is inside gateway.dataDir: keys never live beside the queue',
      );
    }
    const keyId = await rotateKey(dir, await keyFileId(q.keyFile));
    try {
      const held = await Keyring.hold(join(dir, `${keyId}.key`));
      const keys: QueueKeys = {
        current: held.id,
        files: new Map([[held.id, held.file], ...keyring.files()]),
        identify: (rec, salts) => keyring.identify(rec, salts),
      };
      const fromSeq = await queue.switchKey(keys, () => keyring.seat(held));
      log.info({ keyId, fromSeq }, 'queue key rotated: the new key seals from this seq');
      return { keyId, fromSeq };
    } catch (err) {
      // current.json names it already: the next start seals with it whatever happens here.
      throw new JobFailure(
        `the new queue key ${keyId} is written but the running queue could not switch to it ` +
          `(${errorText(err)}); it seals from the next start`,
      );
    }
  }

  private async retireNow(ids: readonly string[]): Promise<void> {
    const { keyring, log } = this.deps;
    const q = this.deps.site().queue;
    const dir = q.rotatedKeysDir;
    if (ids.length === 0 || dir === undefined) return;
    // The site file's keys stay where it names them, even when they lie in the folder.
    const named = new Set([q.keyFile, ...q.previousKeyFiles].map((f) => resolve(f)));
    const files = keyring.files();
    const overlayKey = await overlaySealingKeyId(this.deps.site().gateway.dataDir);
    const candidates = ids
      .filter((id) => id !== keyring.currentId && id !== overlayKey)
      .flatMap((id) => {
        const f = files.get(id);
        return f === undefined || named.has(resolve(f)) ? [] : [f];
      });
    try {
      const moved = await retireKeyFiles(dir, candidates);
      const movedIds = ids.filter((id) => moved.includes(files.get(id) ?? ''));
      keyring.release(movedIds);
      if (movedIds.length > 0)
        log.info({ keyIds: movedIds, folder: join(dir, 'retired') }, 'queue keys retired');
    } catch (err) {
      // Still in place and still loaded: nothing lost, the next start tries again.
      log.warn({ code: 'EDGEGW_E_KEY_READ', err: errorText(err) }, 'drained queue keys could not be retired');
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn);
    this.tail = p.catch(() => undefined);
    return p;
  }
}
