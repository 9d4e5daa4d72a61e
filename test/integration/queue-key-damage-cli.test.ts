// Breaks 3 and 5 of issue 6 through the real `edgegw` binary in child processes: a replaced key is
// refused by run and verify (exit 78, the key file named, nothing quarantined) and rotation with
// queue.previousKeyFiles drains the old backlog; a missing CURRENT is refused by run (exit 69,
// pointing at `edgegw queue repair`), reported by inspect/verify without a write, and repaired,
// after which run delivers every record with its seq.

import assert from 'node:assert/strict';
import { readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeNewKeyFile } from '../../src/seal/keyfile.js';
import { runCli, startCli } from '../helpers/cli.js';
import { makeSite, waitFor, type TestSite, type WireMessage } from '../helpers/site.js';

interface Figures {
  records: number;
  nextSeq: number;
  quarantined: number;
  firstSeq: number | null;
}

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    const st = await stat(join(dir, name));
    out[name] = `${st.size}@${st.mtimeMs}`;
  }
  return out;
}

describe('queue keys and damage (edgegw in child processes)', function () {
  this.timeout(90_000);
  let site: TestSite;
  let yaml: string;
  beforeEach(async () => {
    site = await makeSite({ sensors: '  - { id: counter-1, sim: { wave: counter }, every: 20ms }' });
    yaml = await readFile(site.configFile, 'utf8');
  });
  afterEach(async () => {
    await site.cleanup();
  });

  /** Runs the daemon with no broker until `records` records are committed, then stops it. */
  async function backlog(records: number): Promise<Figures> {
    await writeFile(
      site.configFile,
      yaml.replace(/url: mqtts:\/\/localhost:\d+/, 'url: mqtts://localhost:1'),
    );
    const d = startCli(['run', '-c', site.configFile]);
    try {
      await waitFor(
        async () => {
          const r = await runCli(['status', '--json', '-c', site.configFile]);
          return r.code === 0 && (JSON.parse(r.stdout) as { queue: Figures }).queue.records >= records;
        },
        20_000,
        `${records} records queued`,
      );
    } finally {
      d.child.kill('SIGTERM');
      assert.equal((await d.done).code, 0);
    }
    await writeFile(site.configFile, yaml);
    return inspect();
  }

  async function inspect(): Promise<Figures> {
    const r = await runCli(['queue', 'inspect', '--json', '-c', site.configFile]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Figures;
  }

  /** Runs the daemon with the broker until the queue is empty; the seqs the subscriber saw. */
  async function deliverAll(): Promise<number[]> {
    const seqs: number[] = [];
    const unsubscribe = await site.broker.subscribe(site.topic, (p) => {
      for (const rec of (JSON.parse(p.toString('utf8')) as WireMessage).recs) seqs.push(rec.seq);
    });
    const d = startCli(['run', '-c', site.configFile]);
    try {
      await waitFor(
        async () => {
          const r = await runCli(['status', '--json', '-c', site.configFile]);
          if (r.code !== 0) return false;
          const st = JSON.parse(r.stdout) as { queue: Figures; counters: { quarantined: number } };
          assert.equal(st.counters.quarantined, 0, 'nothing quarantined');
          return st.queue.records === 0 && seqs.length > 0;
        },
        30_000,
        'the backlog delivered',
      );
    } finally {
      d.child.kill('SIGTERM');
      assert.equal((await d.done).code, 0);
      await unsubscribe();
    }
    return seqs;
  }

  function assertContiguous(seqs: number[], upTo: number): void {
    const unique = [...new Set(seqs)].sort((a, b) => a - b);
    assert.equal(unique[0], 1);
    assert.ok(unique.at(-1)! >= upTo, `delivered up to ${unique.at(-1)}`);
    unique.forEach((s, i) => assert.equal(s, i + 1, `seq ${i + 1} delivered`));
  }

  it('a replaced key: run and verify refuse it; previousKeyFiles drains the old records', async () => {
    const before = await backlog(5);
    const keyFile = join(site.dir, 'pki', 'queue.key');
    const oldKey = join(site.dir, 'pki', 'old-queue.key');
    await rename(keyFile, oldKey);
    await writeNewKeyFile(keyFile);

    const run = await runCli(['run', '-c', site.configFile]);
    assert.equal(run.code, 78, run.stderr);
    assert.match(run.stderr, /EDGEGW_E_QUEUE_KEY/);
    assert.ok(run.stderr.includes(keyFile), run.stderr);
    assert.match(run.stderr, /previousKeyFiles/);
    const verify = await runCli(['queue', 'verify', '-c', site.configFile]);
    assert.equal(verify.code, 78, verify.stderr);
    assert.match(verify.stderr, /EDGEGW_E_QUEUE_KEY/);
    const still = await inspect();
    assert.deepEqual(
      [still.records, still.nextSeq, still.quarantined],
      [before.records, before.nextSeq, 0],
      'no record touched or quarantined',
    );

    // Rotation: the new key seals, the old one opens the backlog until it is drained.
    yaml = yaml.replace(
      'keyFile: pki/queue.key',
      'keyFile: pki/queue.key\n  previousKeyFiles: [pki/old-queue.key]',
    );
    await writeFile(site.configFile, yaml);
    const ok = await runCli(['queue', 'verify', '--json', '-c', site.configFile]);
    assert.equal(ok.code, 0, ok.stderr);
    assertContiguous(await deliverAll(), before.nextSeq - 1);

    // Drained: the old key is no longer needed.
    yaml = yaml.replace('\n  previousKeyFiles: [pki/old-queue.key]', '');
    await writeFile(site.configFile, yaml);
    await unlink(oldKey);
    assert.equal((await runCli(['queue', 'verify', '-c', site.configFile])).code, 0);
  });

  it('a missing CURRENT: run refuses, inspect/verify report it and write nothing, repair recovers it all', async () => {
    const before = await backlog(5);
    const data = join(site.dir, 'data');
    await unlink(join(data, 'CURRENT'));

    const run = await runCli(['run', '-c', site.configFile]);
    assert.equal(run.code, 69, run.stderr);
    assert.match(run.stderr, /EDGEGW_E_QUEUE_DAMAGED/);
    assert.match(run.stderr, /edgegw queue repair/);
    const files = await snapshot(data);
    for (const verb of ['inspect', 'verify']) {
      const r = await runCli(['queue', verb, '-c', site.configFile]);
      assert.equal(r.code, 69, `${verb}: ${r.stderr}`);
      assert.match(r.stderr, /EDGEGW_E_QUEUE_DAMAGED/);
    }
    assert.deepEqual(await snapshot(data), files, 'inspect and verify changed nothing on disk');

    const repair = await runCli(['queue', 'repair', '-c', site.configFile]);
    assert.equal(repair.code, 0, repair.stderr);
    assert.match(repair.stdout, new RegExp(`kept ${before.records} records`));
    const next = Number(/next seq (\d+)/.exec(repair.stdout)?.[1]);
    assert.ok(next >= before.nextSeq, `repair's next seq ${next} is below ${before.nextSeq}`);
    // One `queue-repair` audit entry on stderr: what was kept and where the copy is, no key.
    const audits = repair.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.audit !== undefined);
    assert.deepEqual(
      audits.map((e) => [e.audit, e.kept, e.quarantined, e.rebuilt, e.nextSeq]),
      [['queue-repair', before.records, 0, true, next]],
    );
    assert.match(String(audits[0]!.backup), /data\.damaged-/);
    assert.ok(!repair.stderr.includes((await readFile(join(site.dir, 'pki', 'queue.key'))).toString('hex')));
    assert.ok(
      (await readdir(site.dir)).some((n) => n.startsWith('data.damaged-')),
      'a copy is kept',
    );
    const after = await inspect();
    assert.deepEqual([after.records, after.nextSeq], [before.records, next]);
    // Every record from before the damage, then new ones only above the repair's next seq.
    const delivered = await deliverAll();
    assertContiguous(
      delivered.filter((q) => q < before.nextSeq),
      before.nextSeq - 1,
    );
    assert.ok(
      delivered.every((q) => q < before.nextSeq || q >= next),
      'no seq between the old end and the repair mark',
    );
  });
});
