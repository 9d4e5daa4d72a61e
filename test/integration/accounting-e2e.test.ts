// Every reading accounted for, end to end (accounting issue, "Tests (real parts)"): a real daemon
// publishing to the real TLS broker is SIGKILLed three times (twice while PUBACKs are held, so the
// broker forwarded records the daemon sends again), its small queue (maxBytes 1 MiB, drop-oldest)
// really drops records while the broker is cut, and one record is tampered on disk while it is
// stopped. A real `edgegw consume` (restarted once, on its state file) runs throughout. At the end
// every reading the broker forwarded is in consume's NDJSON exactly once, its gap report shows no
// missing range, and the dropped and quarantined ranges are explained by notices whose reading
// counts are the queue's own totals. Run plain and with `uplink.compression: deflate`.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import { KIND_RECORD, RECORD_END, queueKey, seqOfKey } from '../../src/queue/keys.js';
import type { QueueTotals } from '../../src/queue/totals.js';
import { queryStatus } from '../../src/status/server.js';
import type { GapReport } from '../../src/consumer/dedupe.js';
import { runCli, startCli } from '../helpers/cli.js';
import { waitFor, subscribedSite, type SubscribedSite } from '../helpers/site.js';

interface Row {
  gw: string;
  seq: number;
  sensor: string;
  ts: number;
  value: unknown;
  quality: string;
}

interface Inspect {
  records: number;
  nextSeq: number;
  totals: QueueTotals;
  noticeTotals: { committed: number; delivered: number; quarantined: number };
}

// Counters identify every reading (sensor, value) within a daemon life; the random sensors carry
// float64 values (~12 sealed bytes a reading) so that 1 MiB of queue fills in seconds, not minutes.
const SENSORS = [
  ...[1, 2, 3, 4].map((i) => `  - { id: count-${i}, sim: { wave: counter }, every: 10ms }`),
  ...Array.from(
    { length: 16 },
    (_, i) => `  - { id: rand-${i + 1}, sim: { wave: random, min: 0, max: 1000000 }, every: 10ms }`,
  ),
].join('\n');

const QUEUE = '  maxBytes: 1MiB\n  minFreeBytes: 0B\n  whenFull: drop-oldest\n  maxRecordReadings: 100';

function variant(name: string, extraUplink: string, firstByte: number): void {
  describe(`accounting end to end (${name})`, function () {
    this.timeout(90_000);
    const fixture: SubscribedSite = subscribedSite({ sensors: SENSORS, extraQueue: QUEUE, extraUplink });
    // A failed assertion must not leave a daemon or a consumer running.
    const children: ChildProcess[] = [];
    afterEach(() => {
      for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    });

    it('SIGKILLs, drops, a quarantine, a consumer restart: every reading once, every gap explained', async () => {
      const site = fixture.site;
      const socket = join(site.dir, 'status.sock');
      const dataDir = join(site.dir, 'data');
      const out = join(site.dir, 'rows.ndjson');
      const consumeArgs = [
        'consume',
        ...['--url', site.broker.url, '--topic', site.topic, '--client-id', 'e2e-consumer'],
        ...['--ca', join(site.dir, 'pki', 'ca.pem'), '--cert', join(site.dir, 'pki', 'client.pem')],
        ...['--key', join(site.dir, 'pki', 'client.key')],
        ...['--state', join(site.dir, 'consumer-state.json'), '--out', out],
      ];
      const startConsumer = async () => {
        const c = startCli(consumeArgs);
        children.push(c.child);
        let err = '';
        c.child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
        await waitFor(() => err.includes(`subscribed to ${site.topic}`), 20_000, 'the consumer subscribed');
        return { ...c, stderr: () => err };
      };
      const seqsSeen = () => new Set(fixture.messages.flatMap((m) => m.recs.map((r) => r.seq)));
      const deliveries = () => fixture.messages.reduce((n, m) => n + m.recs.length, 0);
      const status = () => queryStatus(socket).catch(() => null);
      const run = () => {
        const d = startCli(['run', '-c', site.configFile]);
        children.push(d.child);
        return d;
      };
      /** Kills `daemon` once the broker forwarded records whose PUBACKs it holds: duplicates certain. */
      const killWithAcksHeld = async (daemon: ReturnType<typeof run>) => {
        site.broker.pauseAcks();
        const forwarded = deliveries();
        await waitFor(
          () => deliveries() >= forwarded + 3,
          20_000,
          'records forwarded while PUBACKs are held',
        );
        daemon.child.kill('SIGKILL');
        assert.equal((await daemon.done).signal, 'SIGKILL');
        site.broker.resumeAcks();
      };

      // The payloads' framing (DESIGN.md §3): every one plain JSON, or every one a zlib stream.
      const firstBytes = new Set<number>();
      const unsubscribe = await site.broker.subscribe(site.topic, (p: Buffer) => firstBytes.add(p[0]!));
      let consumer = await startConsumer();

      // Life 1: publishing, then killed with PUBACKs held.
      const life1 = run();
      await waitFor(() => seqsSeen().size >= 20, 30_000, 'records at the broker');
      await killWithAcksHeld(life1);
      // The consumer stops cleanly and comes back on its state file (same persistent session).
      consumer.child.kill('SIGTERM');
      assert.equal((await consumer.done).code, 0, consumer.stderr());
      consumer = await startConsumer();

      // Life 2: the broker is cut, the queue fills and drop-oldest really drops; killed.
      const life2 = run();
      let life2Log = '';
      life2.child.stdout!.on('data', (d: Buffer) => (life2Log += d.toString()));
      life2.child.stderr!.on('data', (d: Buffer) => (life2Log += d.toString()));
      /** The queue's give-up lines: drop-oldest's (whenFull) or a refused or failed write's. */
      const gaveUp = () => life2Log.split('\n').filter((l) => l.includes('"msg":"queue gave up records"'));
      const had = seqsSeen().size;
      await waitFor(() => seqsSeen().size >= had + 10, 30_000, 'records after the restart');
      site.broker.cut();
      // drop-oldest's log line comes after its batch (the drop and the totals) is on disk; the
      // dropped counter alone also counts a record refused or not written, which is never stored.
      await waitFor(
        () => gaveUp().some((l) => l.includes('"reason":"whenFull"')),
        60_000,
        'records dropped by the full queue',
        250,
      );
      assert.ok(((await status())?.counters.dropped ?? 0) > 0, 'the status counts the drop');
      // What a technician sees; the process's counters count this life only (DESIGN.md §5).
      const statusJson = await runCli(['status', '--json', '-c', site.configFile]);
      assert.equal(statusJson.code, 0, statusJson.stderr);
      const life2Dropped = (JSON.parse(statusJson.stdout) as { counters: { dropped: number } }).counters
        .dropped;
      life2.child.kill('SIGKILL');
      assert.equal((await life2.done).signal, 'SIGKILL');

      // While it is stopped: flip one byte of a queued record's ciphertext (never sent: cut).
      const db = new Level<Uint8Array, Uint8Array>(dataDir, { keyEncoding: 'view', valueEncoding: 'view' });
      await db.open();
      const queued = await db.iterator({ gte: queueKey(KIND_RECORD, 0), lt: RECORD_END }).all();
      const [key, value] = queued[Math.floor(queued.length / 2)]!;
      const tampered = seqOfKey(key);
      const bad = Uint8Array.from(value);
      bad[bad.length - 3]! ^= 0x01;
      await db.put(key, bad, { sync: true });
      await db.close();
      site.broker.restore();

      // Life 3: draining the backlog, killed with PUBACKs held.
      const life3 = run();
      const had3 = seqsSeen().size;
      await waitFor(() => seqsSeen().size >= had3 + 20, 30_000, 'records after the cut');
      await killWithAcksHeld(life3);

      // Life 4 catches up (backlog drained, the tampered record quarantined, notices delivered).
      const last = run();
      const caughtUp = async () => {
        const st = await status();
        return (
          st !== null &&
          st.uplink.state === 'connected' &&
          st.queue.notices === 0 &&
          (st.queue.oldestTs === null || Date.now() - st.queue.oldestTs < 2_000) &&
          seqsSeen().has(st.queue.nextSeq - 1) &&
          fixture.messages.some((m) => m.recs.some((r) => r.gap?.why === 'quarantined'))
        );
      };
      await waitFor(caughtUp, 40_000, 'the daemon caught up', 250);
      last.child.kill('SIGTERM');
      assert.equal((await last.done).code, 0);

      const inspect = await runCli(['queue', 'inspect', '--json', '-c', site.configFile]);
      assert.equal(inspect.code, 0, inspect.stderr);
      const q = JSON.parse(inspect.stdout) as Inspect;
      const t = q.totals;
      assert.equal(q.records, 0, 'the clean stop delivered everything');
      assert.ok(
        t.droppedRecords > 0 && t.droppedReadings > 0,
        `the full queue dropped records; life 2 gave up: ${gaveUp().join('\n')}`,
      );
      assert.equal(t.quarantinedRecords, 1, 'the tampered record was quarantined');
      assert.equal(q.noticeTotals.delivered, q.noticeTotals.committed, 'every notice was acknowledged');
      assert.equal(
        t.committedReadings,
        t.deliveredReadings + t.droppedReadings + t.quarantinedReadings,
        'the queue accounts for every committed reading',
      );
      assert.ok(t.quarantinedReadings > 0, 'its reading count is known (from its plain header)');
      // Drops went on in life 2 after its status was read (and may in life 3, while the backlog
      // was still at the bound): the status figure is a lower bound of the queue's lifetime total.
      assert.ok(
        life2Dropped > 0 && life2Dropped <= t.droppedReadings,
        `status dropped ${life2Dropped}; life 2 gave up: ${gaveUp().join('\n')}`,
      );
      assert.ok(deliveries() > seqsSeen().size, 'the broker forwarded some records twice');
      await unsubscribe();
      assert.deepEqual([...firstBytes], [firstByte], 'the payload framing of this variant');

      // The consumer: every reading the broker forwarded, exactly once.
      const expected = new Map(fixture.readings().map((r) => [`${r.seq}/${r.sensor}/${r.ts}`, r]));
      const rows = async (): Promise<Row[]> =>
        (await readFile(out, 'utf8').catch(() => ''))
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as Row);
      await waitFor(
        async () => (await rows()).length >= expected.size,
        30_000,
        'every reading in the NDJSON',
        200,
      );
      consumer.child.kill('SIGUSR1');
      await waitFor(() => consumer.stderr().includes('"gaps"'), 10_000, 'the gap report on SIGUSR1');
      consumer.child.kill('SIGTERM');
      assert.equal((await consumer.done).code, 0, consumer.stderr());

      const got = await rows();
      const keys = got.map((r) => `${r.seq}/${r.sensor}/${r.ts}`);
      assert.equal(new Set(keys).size, keys.length, 'no reading twice');
      assert.deepEqual(new Set(keys), new Set(expected.keys()), 'every reading once');
      for (const r of got) {
        const e = expected.get(`${r.seq}/${r.sensor}/${r.ts}`)!;
        assert.deepEqual([r.gw, r.value, r.quality], ['test-gw1', e.value, e.quality]);
      }
      assert.ok(!got.some((r) => r.seq === tampered), 'nothing of the tampered record was emitted');
      const counters = [1, 2, 3, 4].map((i) => got.filter((r) => r.sensor === `count-${i}`).length);
      assert.ok(Math.min(...counters) > 0, 'every counter sensor reached the consumer');

      // The gap report at exit: nothing missing; drops and the quarantine explained, counted as the
      // queue counted them.
      const report = JSON.parse(consumer.stderr().trim().split('\n').at(-1)!) as {
        gaps: GapReport[];
        duplicateSeqs: number;
      };
      assert.equal(report.gaps.length, 1);
      const g = report.gaps[0]!;
      const maxSeq = Math.max(...seqsSeen());
      assert.deepEqual([g.gw, g.first, g.watermark, g.highest], ['test-gw1', 1, maxSeq, maxSeq]);
      assert.deepEqual(g.missing, [], 'no unexplained range');
      assert.ok(report.duplicateSeqs > 0, 'the redelivered seqs were dropped as duplicates');
      const quarantined = g.explained.filter((x) => x.why === 'quarantined');
      assert.deepEqual(
        quarantined.map((x) => [x.from, x.to, x.readings]),
        [[tampered, tampered, t.quarantinedReadings]],
      );
      assert.deepEqual(g.totals.quarantined, { ranges: 1, seqs: 1, readings: t.quarantinedReadings });
      assert.equal(g.totals.dropped.seqs, t.droppedRecords, 'dropped seqs: the queue totals');
      assert.equal(g.totals.dropped.readings, t.droppedReadings, 'dropped readings: the queue totals');
      // `skipped`: seqs held in memory for their PUBACK at a kill (write-behind).
      assert.deepEqual(
        Object.entries(g.totals)
          .filter(([why, x]) => !['dropped', 'quarantined', 'skipped'].includes(why) && x.seqs > 0)
          .map(([why]) => why),
        [],
        'nothing else given up',
      );
      // What the queue counts delivered is what the consumer emitted outside the explained ranges
      // (a dropped record may still arrive: it was in flight when it was dropped). A skipped range
      // may hold records delivered before a kill, counted or not depending on whether a batch
      // wrote their counts before it: between the two bounds.
      const inRange = (seq: number, skipped: boolean) =>
        g.explained.some((x) => (skipped || x.why !== 'skipped') && x.from <= seq && seq <= x.to);
      const outside = got.filter((r) => !inRange(r.seq, true)).length;
      const outsideKept = got.filter((r) => !inRange(r.seq, false)).length;
      assert.ok(
        outside <= t.deliveredReadings && t.deliveredReadings <= outsideKept,
        `delivered ${t.deliveredReadings} between ${outside} and ${outsideKept}`,
      );
    });
  });
}

variant('plain', '', 0x7b);
variant('deflate', '  compression: deflate', 0x78);
