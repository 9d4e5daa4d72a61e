// The disk fills (a 4 MiB tmpfs as the queue's filesystem, a ballast file taking most of it)
// under both full policies, first without the broker and then with it; then the space is freed.
// Required (issue 6 break 2): every reading the gateway could not keep is counted as dropped and
// logged by seq range, seqs are never reused, and the gateway recovers (or exits for systemd,
// which restarts it: the scenario restarts it the same way) once there is room again.

import { statfsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '../../helpers/site.js';
import { ackedSeqs } from '../ledger.js';
import type { ChaosSite } from '../harness.js';
import { randomMoment } from '../conditions.js';
import { scenario } from '../scenario.js';

const FAST = `  - { id: fast-1, sim: { wave: counter }, every: 10ms }
  - { id: fast-2, sim: { wave: random, min: 0, max: 1000 }, every: 10ms }
  - { id: fast-3, sim: { wave: random, min: 0, max: 1000 }, every: 10ms }
  - { id: fast-4, sim: { wave: sine, min: 0, max: 100, period: 5s }, every: 10ms }`;

function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/** Restarts the daemon whenever it has exited (what systemd's Restart= does); counts restarts. */
async function supervised(site: ChaosSite, restarts: { n: number }, cond: () => boolean): Promise<boolean> {
  if (!site.daemon.running) {
    restarts.n++;
    await site.daemon.start({ mayFail: true });
  }
  return cond();
}

function diskScenario(policy: 'drop-oldest' | 'reject-new'): void {
  scenario(
    `disk fills under ${policy}, without then with the broker, then space freed`,
    'no silent loss on a full disk; seq never reused; the gateway recovers',
    {
      tmpfs: '4m',
      sensors: FAST,
      flush: '50ms',
      queue: `  maxBytes: 1MiB\n  minFreeBytes: 256KiB\n  whenFull: ${policy}`,
    },
    async ({ site, note }) => {
      const disk = site.disk!;
      const ballast = join(disk, 'ballast');
      // Leave the 256 KiB reserve plus ~384 KiB: less than maxBytes, so the filesystem (its
      // reserve), not the queue bound, runs out — with records queued by then, to deliver.
      await writeFile(ballast, Buffer.alloc(Math.max(0, freeBytes(disk) - 640 * 1024)));
      const restarts = { n: 0 };
      await site.daemon.start();

      // Without the broker: wait until the disk is (nearly) full, a drop is logged or the daemon quit.
      await waitFor(
        () =>
          freeBytes(disk) < 256 * 1024 ||
          !site.daemon.running ||
          /"seqFrom"|EDGEGW_E_QUEUE_FULL|ENOSPC|No space/.test(site.daemon.logText()),
        90_000,
        'the disk to fill',
      );
      note('freeAtFull', freeBytes(disk));
      await randomMoment(500, 2500);

      // With the broker, disk still full: delivery must go on.
      await site.broker.start();
      const acked = ackedSeqs(site.ledger).size;
      await waitFor(
        () => supervised(site, restarts, () => ackedSeqs(site.ledger).size >= acked + 10),
        60_000,
        'deliveries with the disk full',
      );
      await site.broker.kill();
      await randomMoment(500, 2000);

      // Space freed: the gateway is whole again and drains what it kept.
      await rm(ballast);
      await site.broker.start();
      const before = ackedSeqs(site.ledger).size;
      await waitFor(
        () => supervised(site, restarts, () => ackedSeqs(site.ledger).size >= before + 10),
        60_000,
        'deliveries after space was freed',
      );
      note('restarts', restarts.n);
    },
  );
}

describe('chaos: disk full', function () {
  this.timeout(0);
  diskScenario('drop-oldest');
  diskScenario('reject-new');
});
