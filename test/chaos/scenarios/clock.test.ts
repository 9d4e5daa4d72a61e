// The wall clock steps back and forward (libfaketime in the daemon only: LD_PRELOAD with a
// timestamp file rewritten to step the clock, the monotonic clock left alone), during polling and
// during a drain. Polling must go on at the configured rate (issue 6 break 6: grids run on the
// monotonic clock), a forward jump must not count a day of skipped polls, and nothing is lost.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '../../helpers/site.js';
import type { ChaosSite } from '../harness.js';
import { backlogAtLeast, backlogAtMost, delivers } from '../conditions.js';
import { scenario } from '../scenario.js';
import { libfaketime } from '../../helpers/faketime.js';
import type { SiteSpec } from '../harness.js';

/** Two sensors at 20 ms and 50 ms: 70 readings per second configured. */
const RATE = 70;
const SENSORS = `  - { id: counter-1, sim: { wave: counter }, every: 20ms }
  - { id: wave-2, sim: { wave: sine, min: 0, max: 100, period: 10s }, every: 50ms }`;

function fakeClockSpec(extra: SiteSpec = {}): () => SiteSpec {
  return () => {
    const file = join('/tmp', `edgegw-faketime-${process.pid}-${Math.random().toString(16).slice(2)}`);
    return {
      sensors: SENSORS,
      ...extra,
      env: {
        LD_PRELOAD: libfaketime(),
        FAKETIME_TIMESTAMP_FILE: file,
        FAKETIME_NO_CACHE: '1',
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
      },
    };
  };
}

async function stepClock(site: ChaosSite, offset: string): Promise<void> {
  await writeFile(site.daemon.env.FAKETIME_TIMESTAMP_FILE!, `${offset}\n`);
}

/** Waits (real time) until the daemon read `seconds` worth of readings at half the configured rate. */
async function pollsAtRate(site: ChaosSite, seconds: number): Promise<void> {
  const readings = async (): Promise<number> => (await site.daemon.status())?.counters.readings ?? -1;
  const start = await readings();
  const want = start + Math.round((RATE * seconds) / 2);
  await waitFor(
    async () => (await readings()) >= want,
    seconds * 1000 + 1500,
    `polling at the configured rate (${want - start} readings in ${seconds} s)`,
  );
}

async function skippedPolls(site: ChaosSite): Promise<number> {
  const s = (await site.daemon.status()) as unknown as { overruns?: { skipped: number }[] } | null;
  return (s?.overruns ?? []).reduce((n, o) => n + o.skipped, 0);
}

describe('chaos: wall clock steps', function () {
  this.timeout(0);

  scenario(
    'clock steps back 1 h and forward 1 d during polling',
    'polling runs on the monotonic clock; wall time only stamps readings',
    fakeClockSpec(),
    async ({ site }) => {
      await stepClock(site, '+0');
      await site.broker.start();
      await site.daemon.start();
      await pollsAtRate(site, 2);
      await stepClock(site, '-1h');
      await pollsAtRate(site, 3);
      await delivers(site, 5);
      await stepClock(site, '+1d');
      await pollsAtRate(site, 3);
      const skipped = await skippedPolls(site);
      if (skipped > 100) throw new Error(`a forward clock step reported ${skipped} skipped polls`);
      await stepClock(site, '+0');
      await pollsAtRate(site, 2);
      await delivers(site, 5);
    },
  );

  scenario(
    'clock steps back and forward during a drain',
    'a clock step neither stalls a drain nor loses records',
    fakeClockSpec({ uplink: '  limits: { publishesPerSecond: 5 }' }),
    async ({ site }) => {
      await stepClock(site, '+0');
      await site.daemon.start();
      await backlogAtLeast(site, 40);
      await site.broker.start();
      await delivers(site, 5);
      await stepClock(site, '-1h');
      await delivers(site, 10, 30_000);
      await pollsAtRate(site, 2);
      await stepClock(site, '+1d');
      await delivers(site, 10, 30_000);
      await pollsAtRate(site, 2);
      await stepClock(site, '+0');
      await backlogAtMost(site, 10, 90_000);
    },
  );
});
