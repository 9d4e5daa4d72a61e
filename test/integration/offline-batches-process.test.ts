// Offline batches (queue/batcher.ts, README "The SD card") in a real `edgegw run` process: with the
// uplink pointed at a closed port, every record is synced at once, so a batch gathers readings for
// 2 × flush − 50 ms (350 ms at 200 ms) instead of flush: fewer synced commits for the SD card.

import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { runCli, startCli } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { makeSite, waitFor, type TestSite } from '../helpers/site.js';

interface Status {
  uplink: { state: string };
  counters: { committed: number };
}

interface Inspect {
  records: number;
  readings: number;
}

describe('offline batches (child process)', function () {
  this.timeout(60_000);
  let site: TestSite;

  before(async () => {
    // One reading every 20 ms: ~10 to a 200 ms record, ~17 to a 350 ms one.
    site = await makeSite({
      sensors: '  - { id: counter-1, sim: { wave: counter }, every: 20ms }',
      flush: '200ms',
    });
    const yaml = await readFile(site.configFile, 'utf8');
    await writeFile(site.configFile, yaml.replace(site.broker.url, `mqtts://127.0.0.1:${await freePort()}`));
  });
  after(() => site.cleanup());

  it('while the uplink cannot connect, a record holds 2 x flush - 50 ms of readings, and a clean stop commits the rest', async () => {
    const run = startCli(['run', '-c', site.configFile]);
    let last: Status | null = null;
    await waitFor(
      async () => {
        const r = await runCli(['status', '--json', '-c', site.configFile]);
        last = r.code === 0 ? (JSON.parse(r.stdout) as Status) : null;
        return last !== null && last.counters.committed >= 200;
      },
      30_000,
      '200 readings committed',
    );
    assert.notEqual(last!.uplink.state, 'connected', 'the uplink has nowhere to connect');
    run.child.kill('SIGTERM');
    const done = await run.done;
    assert.equal(done.code, 0, done.stderr);

    const r = await runCli(['queue', 'inspect', '--json', '-c', site.configFile]);
    assert.equal(r.code, 0, r.stderr);
    const q = JSON.parse(r.stdout) as Inspect;
    assert.ok(q.readings >= 200, `${q.readings} readings queued`);
    // The last record, cut by the stop, may be short; the others hold ~17 readings (10 at flush).
    const perRecord = (q.readings - 17) / Math.max(1, q.records - 1);
    assert.ok(
      perRecord >= 14,
      `${q.records} records of ${q.readings} readings: ${perRecord.toFixed(1)} a record`,
    );
  });
});
