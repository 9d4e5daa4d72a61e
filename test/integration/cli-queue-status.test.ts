// CLI contracts against real state: check-config's resolved output, `status --json` from a running
// daemon, and `queue inspect|verify` on a backlog with a tampered record, which the daemon then
// quarantines and counts.

import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import { queueKey, KIND_RECORD, KIND_SENSOR_ID } from '../../src/queue/keys.js';
import { queryStatus } from '../../src/status/server.js';
import { runCli, startCli } from '../helpers/cli.js';
import { makeSite, waitFor, type TestSite } from '../helpers/site.js';

/** The audit entries among a child's JSON log lines. */
function audits(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((e) => e.audit !== undefined);
}

interface Status {
  gateway: string;
  version: string;
  uptimeS: number;
  uplink: { state: string; broker: string; since: number; inflight: number; lastError: string | null };
  queue: { records: number; readings: number; bytes: number; oldestTs: number | null; nextSeq: number };
  counters: Record<'readings' | 'committed' | 'delivered' | 'dropped' | 'quarantined' | 'messages', number>;
  sensors: { id: string; value: unknown; quality: string; ts: number; errors: number }[];
}

describe('edgegw check-config, status, queue (child processes)', function () {
  this.timeout(60_000);
  let site: TestSite;
  beforeEach(async () => {
    site = await makeSite({
      sensors:
        '  - { id: counter-1, sim: { wave: counter }, every: 20ms }\n  - { id: wave-1, sim: { wave: sine }, every: 50ms }',
    });
  });
  afterEach(async () => {
    await site.cleanup();
  });

  it('check-config prints the resolved configuration and never a key file', async () => {
    const r = await runCli(['check-config', '-c', site.configFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /id: test-gw1/);
    assert.ok(r.stdout.includes(join(site.dir, 'data')), 'relative dataDir printed resolved');
    assert.match(r.stdout, /flush: 100ms/);
    assert.match(r.stdout, /maxBytes: 256MiB/, 'defaults are shown');
    const key = await readFile(join(site.dir, 'pki', 'client.key'), 'utf8');
    assert.ok(!r.stdout.includes(key.split('\n')[1]!), 'no private key material');
    assert.doesNotMatch(r.stdout, /PRIVATE KEY/);
  });

  it('status --json answers from the running daemon with the contract fields', async () => {
    const daemon = startCli(['run', '-c', site.configFile]);
    try {
      let s: Status | null = null;
      await waitFor(
        async () => {
          const r = await runCli(['status', '--json', '-c', site.configFile]);
          if (r.code !== 0) return false;
          s = JSON.parse(r.stdout) as Status;
          return s.counters.delivered > 0;
        },
        20_000,
        'a status with deliveries',
      );
      const st = s as unknown as Status;
      assert.equal(st.gateway, 'test-gw1');
      assert.match(st.version, /^\d+\.\d+\.\d+/);
      assert.equal(st.uplink.state, 'connected');
      assert.match(st.uplink.broker, /^localhost:\d+$/);
      for (const k of ['readings', 'committed', 'delivered', 'dropped', 'quarantined', 'messages'] as const) {
        assert.equal(typeof st.counters[k], 'number', k);
      }
      assert.ok(st.counters.readings >= st.counters.committed);
      assert.deepEqual(st.sensors.map((x) => x.id).sort(), ['counter-1', 'wave-1']);
      const counter = st.sensors.find((x) => x.id === 'counter-1')!;
      assert.equal(typeof counter.value, 'number');
      assert.equal(counter.quality, 'good');
      // What status adds for operations, from the real uplink and certificate.
      const ops = s as unknown as {
        uplink: { rates: { windowS: number; limits: Record<string, number> } | null; reconnects: number };
        queue: { ageS: number | null; drainS: number | null };
        certificate: { daysLeft: number; state: string; warning: boolean } | null;
        sensors: { ageS: number | null }[];
      };
      assert.equal(ops.uplink.rates?.windowS, 10);
      assert.deepEqual(Object.keys(ops.uplink.rates.limits).sort(), ['bytesPerSecond', 'publishesPerSecond']);
      assert.equal(typeof ops.uplink.reconnects, 'number');
      assert.equal(ops.certificate?.state, 'valid');
      assert.ok(ops.certificate.daysLeft >= 364 && !ops.certificate.warning, JSON.stringify(ops.certificate));
      for (const x of ops.sensors) assert.ok(x.ageS !== null && x.ageS >= 0 && x.ageS < 10, `ageS ${x.ageS}`);
      const human = await runCli(['status', '-c', site.configFile]);
      assert.equal(human.code, 0);
      assert.match(human.stdout, /counter-1/);
      assert.match(human.stdout, /^rates +[\d.]+ of \d+ publishes\/s/m);
      assert.match(human.stdout, /^cert +device certificate valid, 36\d days left/m);

      // --watch into a pipe: plain blocks, one after another, until Ctrl-C (exit 0).
      const watch = startCli(['status', '--watch', '-c', site.configFile]);
      let out = '';
      watch.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await waitFor(() => (out.match(/^edgegw \d/gm) ?? []).length >= 2, 10_000, 'two frames');
      watch.child.kill('SIGINT');
      const w = await watch.done;
      assert.equal(w.code, 0, w.stderr);
      assert.ok(!w.stdout.includes('\x1b'), 'no escape codes when stdout is not a terminal');
      assert.match(w.stdout, /counter-1[^]*\n\nedgegw \d[^]*counter-1/);
    } finally {
      daemon.child.kill('SIGTERM');
      assert.equal((await daemon.done).code, 0);
    }
  });

  it('queue inspect and verify on a backlog; a tampered record fails verify and is quarantined', async () => {
    // No broker at this port: the backlog stays on disk.
    const yaml = await readFile(site.configFile, 'utf8');
    await writeFile(
      site.configFile,
      yaml.replace(/url: mqtts:\/\/localhost:\d+/, 'url: mqtts://localhost:1'),
    );
    const first = startCli(['run', '-c', site.configFile]);
    // Stop once a few records are on disk (not after a fixed time, which a loaded machine outruns).
    await waitFor(
      async () => {
        const st = await queryStatus(join(site.dir, 'status.sock')).catch(() => null);
        return st !== null && st.queue.records >= 3;
      },
      20_000,
      'three records committed',
    );
    first.child.kill('SIGTERM');
    assert.equal((await first.done).code, 0);

    const inspect = await runCli(['queue', 'inspect', '--json', '-c', site.configFile]);
    assert.equal(inspect.code, 0, inspect.stderr);
    const q = JSON.parse(inspect.stdout) as Record<string, number | null> & {
      totals: Record<string, number>;
    };
    assert.deepEqual(Object.keys(q).sort(), [
      'bytes',
      'firstSeq',
      'nextSeq',
      'noticeTotals',
      'notices',
      'oldestTs',
      'pendingGaps',
      'quarantined',
      'readings',
      'records',
      'sensorIds',
      'totals',
    ]);
    // The daemon seals records with indices into the queue's sealed dictionary of sensor ids.
    assert.ok(Number(q.sensorIds) >= 1, `sensorIds ${q.sensorIds}`);
    assert.equal(q.notices, 0, 'no notice: nothing given up');
    assert.ok(Number(q.records) >= 3, `records ${q.records}`);
    assert.equal(q.totals.committedRecords, q.records, 'nothing delivered, dropped or quarantined yet');
    assert.equal(q.firstSeq, 1);
    assert.equal(q.nextSeq, Number(q.records) + 1);
    assert.equal(q.quarantined, 0);
    assert.equal((await runCli(['queue', 'verify', '-c', site.configFile])).code, 0);

    // Flip one bit of record 2's ciphertext on disk.
    const db = new Level<Uint8Array, Uint8Array>(join(site.dir, 'data'), {
      keyEncoding: 'view',
      valueEncoding: 'view',
    });
    await db.open();
    const key = queueKey(KIND_RECORD, 2);
    const stored = await db.get(key);
    assert.ok(stored !== undefined, 'record 2 is on disk');
    const value = Uint8Array.from(stored);
    value[value.length - 3]! ^= 0x01;
    await db.put(key, value, { sync: true });
    await db.close();

    const verify = await runCli(['queue', 'verify', '--json', '-c', site.configFile]);
    assert.equal(verify.code, 1);
    const doc = JSON.parse(verify.stdout) as { tampered: number[]; damagedSensorIds: number[] };
    assert.deepEqual(doc.tampered, [2]);
    assert.deepEqual(doc.damagedSensorIds, [], 'the dictionary is intact');
    const verified = audits(verify.stderr);
    assert.deepEqual(
      verified.map((e) => [e.audit, e.records, e.tampered, e.tamperedSeqs, e.damagedSensorIds, e.gw]),
      [['queue-verify', q.records, 1, ['2'], 0, 'test-gw1']],
    );

    // The daemon quarantines it, counts it, and delivers the rest.
    await writeFile(site.configFile, yaml);
    const second = startCli(['run', '-c', site.configFile]);
    try {
      await waitFor(
        async () => {
          const r = await runCli(['status', '--json', '-c', site.configFile]);
          if (r.code !== 0) return false;
          const st = JSON.parse(r.stdout) as Status;
          return st.counters.quarantined === 1 && st.queue.records === 0;
        },
        20_000,
        'the tampered record quarantined and the backlog drained',
      );
    } finally {
      second.child.kill('SIGTERM');
      assert.equal((await second.done).code, 0);
    }
    // The daemon's log holds one `quarantine` audit entry, for seq 2, at level warn.
    const quarantined = audits((await second.done).stdout).filter((e) => e.audit === 'quarantine');
    assert.deepEqual(
      quarantined.map((e) => [e.seq, e.code, e.level]),
      [[2, 'EDGEGW_E_QUEUE_TAMPERED', 'warn']],
    );
    const after = JSON.parse(
      (await runCli(['queue', 'inspect', '--json', '-c', site.configFile])).stdout,
    ) as {
      quarantined: number;
    };
    assert.equal(after.quarantined, 1);

    // A damaged sensor-id entry fails verify (exit 1), named by its index, and is never re-created.
    const dict = new Level<Uint8Array, Uint8Array>(join(site.dir, 'data'), {
      keyEncoding: 'view',
      valueEncoding: 'view',
    });
    await dict.open();
    const entry = Uint8Array.from(await dict.get(queueKey(KIND_SENSOR_ID, 0)));
    entry[entry.length - 1]! ^= 0x01;
    await dict.put(queueKey(KIND_SENSOR_ID, 0), entry, { sync: true });
    await dict.close();
    const damaged = await runCli(['queue', 'verify', '--json', '-c', site.configFile]);
    assert.equal(damaged.code, 1, damaged.stderr);
    const report = JSON.parse(damaged.stdout) as { tampered: number[]; damagedSensorIds: number[] };
    assert.deepEqual([report.tampered, report.damagedSensorIds], [[], [0]]);
    const text = await runCli(['queue', 'verify', '-c', site.configFile]);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /1 sensor-id entry fails authentication: index 0\n/);
  });
});
