// Issue 6, break 2 end to end: `edgegw run` (a real child process) with its dataDir on a 4 MiB
// tmpfs, the broker down and fast sensors; then the filesystem filled by someone else. The daemon
// keeps running and counts what it cannot keep; `queue inspect` and `run` still work on the full
// filesystem; seq never goes back.

import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, startCli } from '../../helpers/cli.js';
import { makeSite, waitFor, type TestSite } from '../../helpers/site.js';
import { smallFs, type SmallFs } from '../../helpers/small-fs.js';

interface Inspect {
  records: number;
  nextSeq: number;
  totals: Record<string, number>;
}

async function status(site: TestSite): Promise<{ counters: Record<string, number> } | null> {
  const r = await runCli(['status', '--json', '-c', site.configFile]);
  return r.code === 0 ? (JSON.parse(r.stdout) as { counters: Record<string, number> }) : null;
}

async function inspect(site: TestSite): Promise<Inspect> {
  const r = await runCli(['queue', 'inspect', '--json', '-c', site.configFile]);
  assert.equal(r.code, 0, r.stderr);
  const q = JSON.parse(r.stdout) as Inspect;
  const t = q.totals;
  assert.equal(
    t.committedRecords,
    t.deliveredRecords! + t.droppedRecords! + t.quarantinedRecords! + q.records,
  );
  return q;
}

describe('edgegw run on a full disk (4 MiB tmpfs, child processes)', function () {
  this.timeout(120_000);
  let site: TestSite;
  let fs: SmallFs;

  before(async () => {
    site = await makeSite({
      flush: '50ms',
      sensors: [1, 2, 3, 4].map((i) => `  - { id: wave-${i}, sim: { wave: sine }, every: 10ms }`).join('\n'),
      extraQueue: '  maxBytes: 1MiB\n  maxRecordReadings: 200',
    });
    // No broker at this port: everything stays queued.
    const yaml = await readFile(site.configFile, 'utf8');
    await writeFile(
      site.configFile,
      yaml.replace(/url: mqtts:\/\/localhost:\d+/, 'url: mqtts://localhost:1'),
    );
    fs = await smallFs(4 * 1024 * 1024, join(site.dir, 'data'));
  });
  after(async () => {
    await fs.cleanup();
    await site.cleanup();
  });

  it('keeps running, counts what it drops, and inspect and run work on the full filesystem', async () => {
    const first = startCli(['run', '-c', site.configFile]);
    try {
      await waitFor(async () => ((await status(site))?.counters.committed ?? 0) > 0, 30_000, 'commits');
      await fs.fill(0);
      const atFill = (await status(site))!.counters;
      // The filesystem is full: what comes in now is refused, and counted dropped.
      await waitFor(
        async () => ((await status(site))?.counters.dropped ?? 0) > (atFill.dropped ?? 0) + 1000,
        30_000,
        'readings refused on the full filesystem are counted',
      );
    } finally {
      first.child.kill('SIGTERM');
    }
    const ran = await first.done;
    assert.equal(ran.code, 0, ran.stderr);
    // Below the reserve (512 KiB: 1/8 of the filesystem), where the queue does not write.
    assert.ok((await fs.available()) < 512 * 1024, 'the filesystem is still full');
    const gaveUp = ran.stdout.split('\n').filter((l) => l.includes('queue gave up records'));
    for (const line of gaveUp) {
      const l = JSON.parse(line) as Record<string, unknown>;
      assert.equal(typeof l.readingCount, 'number', 'the count survives the log redaction');
      assert.equal(l.records, (l.seqTo as number) - (l.seqFrom as number) + 1);
    }
    const full = await inspect(site);
    assert.ok(full.records > 0);

    const second = startCli(['run', '-c', site.configFile]);
    try {
      await waitFor(async () => (await status(site)) !== null, 30_000, 'run starts on the full filesystem');
    } finally {
      second.child.kill('SIGTERM');
    }
    assert.equal((await second.done).code, 0);

    await fs.free();
    const third = startCli(['run', '-c', site.configFile]);
    try {
      await waitFor(
        async () => ((await status(site))?.counters.committed ?? 0) > 0,
        30_000,
        'commits again once space is freed',
      );
    } finally {
      third.child.kill('SIGTERM');
    }
    assert.equal((await third.done).code, 0);
    const after = await inspect(site);
    assert.ok(after.nextSeq > full.nextSeq, 'seq never goes back');
  });
});
