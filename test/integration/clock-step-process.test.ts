// A wall-clock step in a real `edgegw run` process: libfaketime (preloaded, reading its offset from
// a file on every call) steps CLOCK_REALTIME while CLOCK_MONOTONIC stays true, as an NTP step does.
// Polling must go on through a step back of 1 h and a jump forward of a day, and status must not
// claim a day of skipped polls. No test seam in the product: the clock is faked under it.

import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { queryStatus } from '../../src/status/server.js';
import { startCli } from '../helpers/cli.js';
import { libfaketime } from '../helpers/faketime.js';
import { waitFor, type TestSite, subscribedSite } from '../helpers/site.js';

describe('edgegw run under wall-clock steps (child process, libfaketime)', function () {
  this.timeout(60_000);
  const fixture = subscribedSite({ sensors: '  - { id: counter-1, sim: { wave: counter }, every: 50ms }' });
  let site: TestSite;
  beforeEach(() => {
    site = fixture.site;
  });

  const readings = fixture.readings;

  it('keeps polling through a step back of 1 h and a jump forward of a day; status shows no flood of overruns', async () => {
    const offsetFile = join(site.dir, 'faketime-offset');
    await writeFile(offsetFile, '+0\n');
    const { child, done } = startCli(['run', '-c', site.configFile], {
      LD_PRELOAD: libfaketime(),
      FAKETIME_TIMESTAMP_FILE: offsetFile,
      FAKETIME_NO_CACHE: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    });
    try {
      await waitFor(() => readings().length >= 10, 20_000, 'readings before the step');

      await writeFile(offsetFile, '-3600\n'); // NTP steps the clock back 1 h
      const back = readings().length;
      await waitFor(() => readings().length >= back + 20, 15_000, 'readings after the step back');

      await writeFile(offsetFile, '+86400\n'); // and then a day forward
      const fwd = readings().length;
      await waitFor(() => readings().length >= fwd + 20, 15_000, 'readings after the jump forward');
      // The first 40 polls' readings, backlog included (a clean stop sends only the live tail).
      const first40 = () =>
        new Set(
          readings()
            .map((x) => Number(x.value))
            .filter((v) => v < 40),
        ).size === 40;
      await waitFor(first40, 15_000, 'the first 40 counter readings');

      const st = (await queryStatus(join(site.dir, 'status.sock'))) as unknown as {
        uptimeS: number;
        overruns: { scope: string; skipped: number }[];
      };
      const skipped = st.overruns.reduce((a, o) => a + o.skipped, 0);
      assert.ok(skipped < 100, `status claims ${skipped} skipped polls`);
      assert.ok(st.uptimeS < 600, `uptime ${st.uptimeS} s follows monotonic time`);
    } finally {
      child.kill('SIGTERM');
    }
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
    // Every poll's reading arrived in order: the counter has no gap.
    const values = readings().map((x) => Number(x.value));
    const distinct = [...new Set(values)].sort((a, b) => a - b);
    assert.deepEqual(
      distinct.slice(0, 40),
      Array.from({ length: 40 }, (_, i) => i),
    );
  });
});
