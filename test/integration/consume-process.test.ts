// `edgegw consume` as a real child process against the real TLS test broker, with a real daemon
// publishing and SIGKILLed twice while PUBACKs are held (so the broker has forwarded records the
// daemon will send again: duplicates guaranteed), and the consumer itself restarted once on its
// state file: every reading lands in the NDJSON exactly once and the gap report shows no gap.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startCli } from '../helpers/cli.js';
import { deliveredPast, waitFor, subscribedSite, unexplainedSeqs } from '../helpers/site.js';
import type { GapReport } from '../../src/consumer/dedupe.js';

interface Row {
  gw: string;
  seq: number;
  sensor: string;
  ts: number;
  value: unknown;
  quality: string;
}

describe('edgegw consume (child process, real broker, real daemon)', function () {
  this.timeout(120_000);
  const fixture = subscribedSite({
    sensors:
      '  - { id: counter-1, sim: { wave: counter }, every: 20ms }\n  - { id: wave-1, sim: { wave: sine }, every: 50ms }',
  });

  it('emits every reading exactly once across daemon SIGKILLs and a consumer restart', async () => {
    const site = fixture.site;
    const out = join(site.dir, 'rows.ndjson');
    const state = join(site.dir, 'consumer-state.json');
    const consumeArgs = [
      'consume',
      '--url',
      site.broker.url,
      '--ca',
      join(site.dir, 'pki', 'ca.pem'),
      '--cert',
      join(site.dir, 'pki', 'client.pem'),
      '--key',
      join(site.dir, 'pki', 'client.key'),
      '--topic',
      site.topic,
      '--client-id',
      'test-consumer-1',
      '--state',
      state,
      '--out',
      out,
    ];
    const rows = async (): Promise<Row[]> =>
      (await readFile(out, 'utf8').catch(() => ''))
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Row);
    const startConsumer = async () => {
      const c = startCli(consumeArgs);
      let err = '';
      c.child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      await waitFor(() => err.includes(`subscribed to ${site.topic}`), 20_000, 'the consumer subscribed');
      return { ...c, stderr: () => err };
    };
    const seqsSeen = () => new Set(fixture.messages.flatMap((m) => m.recs.map((r) => r.seq)));
    const deliveries = () => fixture.messages.reduce((n, m) => n + m.recs.length, 0);

    let consumer = await startConsumer();
    // Two daemon lives ended by SIGKILL with publishes forwarded but unacknowledged.
    for (let life = 0; life < 2; life++) {
      const daemon = startCli(['run', '-c', site.configFile]);
      const had = seqsSeen().size;
      await waitFor(() => seqsSeen().size >= had + 20, 30_000, 'records at the broker');
      site.broker.pauseAcks();
      const forwarded = deliveries();
      await waitFor(() => deliveries() >= forwarded + 3, 20_000, 'records forwarded while PUBACKs are held');
      daemon.child.kill('SIGKILL');
      assert.equal((await daemon.done).signal, 'SIGKILL');
      site.broker.resumeAcks();
      if (life === 0) {
        // The consumer stops cleanly and comes back on its state file (same persistent session).
        consumer.child.kill('SIGTERM');
        assert.equal((await consumer.done).code, 0);
        consumer = await startConsumer();
      }
    }
    // The last life catches up and stops cleanly: everything it committed is then delivered.
    const top = Math.max(...seqsSeen());
    const last = startCli(['run', '-c', site.configFile]);
    // New seqs and the backlog both: live records go out ahead of a backlog, a clean stop sends
    // only the live tail.
    await waitFor(() => deliveredPast(fixture.messages, top + 3), 30_000, 'delivery after the restarts');
    last.child.kill('SIGTERM');
    assert.equal((await last.done).code, 0);

    const seqs = [...seqsSeen()].sort((a, b) => a - b);
    const maxSeq = seqs.at(-1)!;
    // Seqs held in memory at a kill (write-behind) come back as a `skipped` notice.
    assert.deepEqual(
      unexplainedSeqs(fixture.messages, maxSeq),
      [],
      'the daemon delivered or explained 1..max',
    );
    assert.ok(deliveries() > seqs.length, 'the broker forwarded some records twice');

    const expected = new Map(fixture.readings().map((r) => [`${r.seq}/${r.sensor}/${r.ts}`, r]));
    await waitFor(
      async () => (await rows()).length >= expected.size,
      30_000,
      'every reading in the NDJSON',
    ).catch(async (err: Error) => {
      const have = new Set((await rows()).map((r) => r.seq));
      const lacking = seqs.filter((s) => !have.has(s));
      throw new Error(
        `${err.message}: seqs lacking ${lacking.slice(0, 20).join(',')} (${lacking.length}); ${consumer.stderr()}`,
      );
    });
    consumer.child.kill('SIGUSR1');
    await waitFor(() => consumer.stderr().includes('"gaps"'), 10_000, 'the gap report on SIGUSR1');
    consumer.child.kill('SIGTERM');
    const done = await consumer.done;
    assert.equal(done.code, 0, consumer.stderr());

    const got = await rows();
    const keys = got.map((r) => `${r.seq}/${r.sensor}/${r.ts}`);
    assert.equal(new Set(keys).size, keys.length, 'no reading twice');
    assert.deepEqual(new Set(keys), new Set(expected.keys()), 'every reading once');
    for (const r of got) {
      const e = expected.get(`${r.seq}/${r.sensor}/${r.ts}`)!;
      assert.deepEqual([r.gw, r.value, r.quality], ['test-gw1', e.value, e.quality]);
    }

    // The report at exit (the last stderr line): everything settled, nothing missing.
    const lines = consumer.stderr().trim().split('\n');
    const final = JSON.parse(lines.at(-1)!) as { gaps: GapReport[]; duplicateSeqs: number };
    assert.equal(final.gaps.length, 1);
    const g = final.gaps[0]!;
    assert.deepEqual([g.gw, g.first, g.watermark, g.highest], ['test-gw1', 1, maxSeq, maxSeq]);
    assert.deepEqual(g.missing, []);
    assert.ok(final.duplicateSeqs > 0, 'the redelivered seqs were dropped as duplicates');
  });

  it('refuses a client key readable by others (exit 77) and a URL with credentials (exit 78)', async () => {
    const site = fixture.site;
    const { chmod } = await import('node:fs/promises');
    const key = join(site.dir, 'pki', 'client.key');
    await chmod(key, 0o644);
    const base = [
      '--ca',
      join(site.dir, 'pki', 'ca.pem'),
      '--cert',
      join(site.dir, 'pki', 'client.pem'),
      '--key',
      key,
    ];
    const perms = await startCli(['consume', '--url', site.broker.url, ...base]).done;
    assert.equal(perms.code, 77, perms.stderr);
    assert.match(perms.stderr, /--key .*chmod 600/);
    await chmod(key, 0o600);
    const creds = await startCli(['consume', '--url', 'mqtts://u:p@localhost:1', ...base]).done;
    assert.equal(creds.code, 78, creds.stderr);
    assert.match(creds.stderr, /--url: the URL carries user:password@/);
    const plain = await startCli(['consume', '--url', 'mqtt://localhost:1', ...base]).done;
    assert.equal(plain.code, 78, plain.stderr);
  });
});
