// Reload without restart (operations issue), on the real `edgegw run` in a child process with real
// signals, a real TLS broker and a real Modbus TCP simulator: SIGHUP applies a sensor added and a
// bus removed (only their groups change; seq goes on; nothing lost or sent twice), refuses a broken
// file and a gateway.id change (the running configuration goes on delivering); `edgegw reload`
// prints changes, refusals and exit codes; the audit entries are there and hold no secret.

import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { startModbusSimulator, type ModbusSim } from '../../src/demo/modbus-sim.js';
import { startTlsBroker } from '../../src/demo/broker.js';
import { runCli, startCli, type CliResult } from '../helpers/cli.js';
import { decodeWire, makeSite, waitFor, type TestSite, type WireMessage } from '../helpers/site.js';

const COUNTER = '  - { id: counter-1, sim: { wave: counter }, every: 20ms }';
const PLC = '  - { id: plc-temp, bus: plc, table: holding, address: 0, type: uint16, every: 50ms }';
const COUNTER2 = '  - { id: counter-2, sim: { wave: counter }, every: 20ms }';

describe('reload without restart (child process)', function () {
  this.timeout(90_000);
  let site: TestSite;
  let plc: ModbusSim;
  let yaml: string;
  const messages: WireMessage[] = [];
  let unsubscribe: () => Promise<void>;
  let child: ChildProcess | null = null;
  let done: Promise<CliResult>;
  let out = '';

  beforeEach(async () => {
    messages.length = 0;
    out = '';
    plc = await startModbusSimulator({ demo: false });
    plc.set('holding', 0, [42]);
    site = await makeSite({
      sensors: `${COUNTER}\n${PLC}`,
      buses: `  plc: { tcp: { host: 127.0.0.1, port: ${plc.port} }, timeout: 500ms }`,
      logLevel: 'info',
    });
    yaml = await readFile(site.configFile, 'utf8');
    unsubscribe = await site.broker.subscribe(site.topic, (p: Buffer) => {
      messages.push(JSON.parse(p.toString('utf8')) as WireMessage);
    });
    ({ child, done } = startCli(['run', '-c', site.configFile]));
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(
      () => bySensor('plc-temp').length >= 5 && bySensor('counter-1').length >= 10,
      20_000,
      'first readings',
    );
  });
  afterEach(async () => {
    if (child !== null && child.exitCode === null) child.kill('SIGKILL');
    await done;
    child = null;
    await unsubscribe();
    await site.cleanup();
    await plc.close();
  });

  const readings = () => messages.flatMap(decodeWire);
  const bySensor = (id: string) => readings().filter((r) => r.sensor === id);
  const audits = (event: string) =>
    out
      .split('\n')
      .filter((l) => l.includes(`"audit":"${event}"`))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const status = async () => {
    const r = await runCli(['status', '--json', '-c', site.configFile]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as {
      config: { hash: string; loadedAt: number; file: string };
      uplink: { broker: string };
    };
  };

  /** Stops the daemon; checks nothing was lost or sent twice; the offline queue figures. */
  async function stopAndCheck(): Promise<{ sensorIds: number }> {
    child!.kill('SIGTERM');
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
    const inspect = await runCli(['queue', 'inspect', '--json', '-c', site.configFile]);
    assert.equal(inspect.code, 0, inspect.stderr);
    const q = JSON.parse(inspect.stdout) as { nextSeq: number; firstSeq: number | null; sensorIds: number };
    const got = messages.flatMap((m) => m.recs.map((rec) => rec.seq));
    assert.equal(new Set(got).size, got.length, 'no record was sent twice');
    const have = new Set(got);
    if (q.firstSeq !== null) for (let s = q.firstSeq; s < q.nextSeq; s++) have.add(s);
    for (let s = 1; s < q.nextSeq; s++) assert.ok(have.has(s), `seq ${s} neither delivered nor queued`);
    const stop = audits('stop');
    assert.equal(stop.length, 1);
    assert.equal(stop[0]!.why, 'SIGTERM');
    return q;
  }

  it('SIGHUP applies a sensor added and a bus removed; the other group runs on untouched', async () => {
    const before = await status();
    await writeFile(
      site.configFile,
      yaml.replace(/buses:\n.*\n/, 'buses: {}\n').replace(`${PLC}\n`, `${COUNTER2}\n`),
    );
    child!.kill('SIGHUP');
    await waitFor(() => audits('reload').length === 1, 20_000, 'the reload audit entry');
    await waitFor(() => bySensor('counter-2').length >= 20, 20_000, 'the new sensor at the broker');
    const entry = audits('reload')[0]!;
    assert.deepEqual(entry.changed, [
      'buses.plc (removed)',
      'sensors.counter-2 (added)',
      'sensors.plc-temp (removed)',
    ]);

    const firstNew = Math.min(...bySensor('counter-2').map((r) => r.ts));
    const lastPlc = Math.max(...bySensor('plc-temp').map((r) => r.ts));
    assert.ok(lastPlc <= firstNew, 'the removed sensor stopped before the new one started');
    const polls = plc.requests;
    await waitFor(() => bySensor('counter-2').length >= 40, 20_000, 'more readings');
    assert.equal(plc.requests, polls, 'the removed bus is no longer polled');
    // counter-1's group was not restarted: its counter never went back to 0.
    // By seq, and once each: a reconnect's backlog goes out after live records, a resend twice.
    const counter = bySensor('counter-1').sort((a, b) => a.seq - b.seq || a.ts - b.ts);
    const values = [...new Map(counter.map((r) => [`${r.seq}/${r.ts}`, Number(r.value)])).values()];
    assert.deepEqual(
      values,
      Array.from({ length: values.length }, (_, i) => i),
      'counter-1 continuous: its group was not restarted',
    );

    const after = await status();
    assert.notEqual(after.config.hash, before.config.hash);
    assert.ok(after.config.loadedAt > before.config.loadedAt);
    assert.equal(entry.configHash, after.config.hash);
    assert.equal(audits('start')[0]!.configHash, before.config.hash);
    // The added sensor took a new entry in the queue's sealed dictionary of sensor ids (its
    // readings reached the broker above: its records opened with it); the others kept theirs.
    assert.equal((await stopAndCheck()).sensorIds, 3);
  });

  it('SIGHUP refuses a broken file with check-config lines; the running configuration goes on', async () => {
    await writeFile(
      site.configFile,
      yaml.replace('wave: counter }, every: 20ms', 'wave: counter }, every: 2 weeks'),
    );
    child!.kill('SIGHUP');
    await waitFor(() => audits('reload-refused').length === 1, 20_000, 'the refusal');
    assert.match(
      out,
      new RegExp(`${site.configFile.replaceAll('.', '\\.')}:\\d+:\\d+: sensors\\[0\\]\\.every: `),
    );
    assert.equal(audits('reload-refused')[0]!.reason, 'invalid');
    assert.equal(audits('reload-refused')[0]!.errors, 1);
    const n = bySensor('plc-temp').length;
    const c = bySensor('counter-1').length;
    await waitFor(
      () => bySensor('plc-temp').length >= n + 5 && bySensor('counter-1').length >= c + 20,
      20_000,
      'old config delivering',
    );
    await writeFile(site.configFile, yaml); // queue inspect reads it
    await stopAndCheck();
  });

  it('SIGHUP and edgegw reload refuse a TLS key its group or others may read, at its key; the running configuration goes on', async () => {
    const key = join(site.dir, 'pki', 'client.key');
    await chmod(key, 0o644);
    const local = await runCli(['reload', '-c', site.configFile]);
    assert.equal(local.code, 78, local.stderr);
    assert.match(local.stderr, /:\d+:\d+: uplink\.key: the file \S*client\.key has mode 0644: .*chmod 600/);
    child!.kill('SIGHUP');
    await waitFor(() => audits('reload-refused').length === 1, 20_000, 'the refusal');
    assert.match(out, /uplink\.key: the file \S*client\.key has mode 0644/);
    assert.equal(audits('reload-refused')[0]!.reason, 'invalid');
    const c = bySensor('counter-1').length;
    await waitFor(() => bySensor('counter-1').length >= c + 20, 20_000, 'old config delivering');
    await chmod(key, 0o600);
    await stopAndCheck();
  });

  it('edgegw reload: prints what changed (0), refuses a gateway.id change (78), checks locally (78), needs a daemon (69)', async () => {
    await writeFile(
      site.configFile,
      yaml.replace('flush: 100ms', 'flush: 150ms').replace('level: info', 'level: warn'),
    );
    const ok = await runCli(['reload', '-c', site.configFile]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /reloaded: 2 change\(s\) applied\n {2}log\.level\n {2}queue\.flush\n/);

    await writeFile(
      site.configFile,
      yaml.replace('id: test-gw1', 'id: test-gw2').replace('flush: 100ms', 'flush: 300ms'),
    );
    const no = await runCli(['reload', '-c', site.configFile]);
    assert.equal(no.code, 78, no.stderr);
    assert.match(no.stderr, /restart needed for: gateway\.id\n/);
    assert.match(no.stderr, /gateway\.id can only change with a restart.*nothing of it was applied/);
    await waitFor(() => audits('reload-refused').length === 1, 10_000, 'the refusal entry');
    const refusal = audits('reload-refused')[0]!;
    // log.level went to warn live: the second request's info line is gone, audit entries are not.
    assert.equal(out.split('\n').filter((l) => l.includes('"msg":"reload requested"')).length, 1);
    assert.deepEqual(refusal.keys, ['gateway.id']);
    const c = bySensor('counter-1').length;
    await waitFor(() => bySensor('counter-1').length >= c + 20, 20_000, 'still delivering as test-gw1');
    assert.ok(messages.every((m) => m.gw === 'test-gw1'));

    await writeFile(site.configFile, yaml.replace('flush: 100ms', 'flush: 1 hour'));
    const bad = await runCli(['reload', '-c', site.configFile]);
    assert.equal(bad.code, 78);
    assert.match(bad.stderr, /site\.yaml:\d+:\d+: queue\.flush: /);
    assert.equal(audits('reload-refused').length, 1, 'a file invalid here never reaches the daemon');

    // Audit entries hold key paths, counts and hashes: no key material, no reading values.
    const key = await readFile(`${site.dir}/pki/client.key`, 'utf8');
    for (const line of out.split('\n').filter((l) => l.includes('"audit"'))) {
      assert.doesNotMatch(line, /BEGIN|PRIVATE/);
      assert.ok(!line.includes(key.split('\n')[1]!), 'no key material');
      assert.doesNotMatch(line, /"value"/);
    }
    await writeFile(site.configFile, yaml);
    await stopAndCheck();
    const none = await runCli(['reload', '-c', site.configFile]);
    assert.equal(none.code, 69, none.stderr);
    assert.match(none.stderr, /no edgegw daemon answers/);
  });

  it('SIGHUP with a new uplink.url reconnects there; seq goes on, every record reaches one broker or the other', async () => {
    const other = await startTlsBroker({ pki: site.pki });
    try {
      const atOther: WireMessage[] = [];
      const off = await other.subscribe(site.topic, (p: Buffer) => {
        atOther.push(JSON.parse(p.toString('utf8')) as WireMessage);
      });
      await writeFile(site.configFile, yaml.replace(site.broker.url, other.url));
      child!.kill('SIGHUP');
      await waitFor(() => audits('reload').length === 1, 20_000, 'the reload audit entry');
      assert.deepEqual(audits('reload')[0]!.changed, ['uplink.url']);
      await waitFor(() => atOther.flatMap(decodeWire).length >= 20, 20_000, 'readings at the new broker');
      const st = await status();
      assert.equal(st.uplink.broker, `localhost:${other.port}`);
      child!.kill('SIGTERM');
      const r = await done;
      assert.equal(r.code, 0, r.stderr);
      await off();
      // Both brokers together saw every seq up to the last one sent; the rest is still queued.
      const inspect = await runCli(['queue', 'inspect', '--json', '-c', site.configFile]);
      const q = JSON.parse(inspect.stdout) as { nextSeq: number; firstSeq: number | null; sensorIds: number };
      const have = new Set([...messages, ...atOther].flatMap((m) => m.recs.map((rec) => rec.seq)));
      if (q.firstSeq !== null) for (let x = q.firstSeq; x < q.nextSeq; x++) have.add(x);
      for (let x = 1; x < q.nextSeq; x++) assert.ok(have.has(x), `seq ${x} neither delivered nor queued`);
    } finally {
      await other.close();
    }
  });
});
