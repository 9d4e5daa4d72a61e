// Remote configuration through a named Device Shadow (issue 11), on the real `edgegw run` in a
// child process, a real TLS broker and the in-repo Device Shadow simulator attached to it: a delta
// adds a sensor and its readings arrive; an invalid delta is refused and reported with key paths
// (and the non-settable key as such); an uplink change that breaks the connection is reverted;
// the overlay survives a restart while the broker is unreachable, and check-config names its source.

import assert from 'node:assert/strict';
import { chmod, chown, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { ShadowService } from '../../src/demo/iotcore-sim/shadow.js';
import { runCli, startCli, type CliResult } from '../helpers/cli.js';
import {
  decodeWire,
  makeSite,
  waitFor,
  type SiteOptions,
  type TestSite,
  type WireMessage,
} from '../helpers/site.js';

const GW = 'fleet-gw1';
const SHADOW = 'edgegw';
const COUNTER1 = { id: 'counter-1', sim: { wave: 'counter' }, every: '50ms' };
const COUNTER2 = { id: 'counter-2', sim: { wave: 'counter' }, every: '50ms' };

interface Change {
  shadowVersion: number;
  result: string;
  keys: string[];
  errors: string[] | null;
  refused: string[] | null;
  reason: string | null;
}

interface AuditEntry {
  shadow: string;
  shadowVersion: number;
  keys: string[];
  refused: string[];
  errors?: number;
  errorKeys?: string[];
}

describe('remote configuration through a Device Shadow (child process)', function () {
  this.timeout(120_000);
  let site: TestSite;
  let shadow: ShadowService;
  const messages: WireMessage[] = [];
  let unsubscribe: () => Promise<void>;
  let child: ChildProcess | null = null;
  let done: Promise<CliResult> = Promise.resolve({ code: 0, stdout: '', stderr: '' } as CliResult);
  let out = '';

  async function setup(opts: SiteOptions): Promise<void> {
    messages.length = 0;
    out = '';
    site = await makeSite({ gatewayId: GW, logLevel: 'info', ...opts });
    shadow = new ShadowService(site.broker.aedes);
    unsubscribe = await site.broker.subscribe(site.topic, (p: Buffer) => {
      messages.push(JSON.parse(p.toString('utf8')) as WireMessage);
    });
  }
  function start(): void {
    ({ child, done } = startCli(['run', '-c', site.configFile]));
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  }
  async function stop(): Promise<void> {
    child!.kill('SIGTERM');
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
  }
  afterEach(async () => {
    if (child !== null && child.exitCode === null) child.kill('SIGKILL');
    await done;
    child = null;
    shadow.close();
    await unsubscribe();
    await site.cleanup();
  });

  const bySensor = (id: string) => messages.flatMap(decodeWire).filter((r) => r.sensor === id);
  const reported = () => shadow.document(GW, SHADOW)?.reported ?? {};
  const change = () => (reported().edgegw as { change?: Change } | undefined)?.change ?? null;
  const audits = (event: string) =>
    out
      .split('\n')
      .filter((l) => l.includes(`"audit":"${event}"`))
      .map((l) => JSON.parse(l) as AuditEntry);
  const status = async () => {
    const r = await runCli(['status', '--json', '-c', site.configFile]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as {
      sensors: { id: string }[];
      config: { hash: string };
      fleet: {
        shadow: {
          version: number;
          overlay: { path: string; source: string }[];
          lastChange: Change | null;
          overlayRefused: string | null;
        };
      };
    };
  };
  const shadowSite = (extra = '') => `fleet:\n  shadow: { name: ${SHADOW}, revertAfter: 8s${extra} }`;

  it('a delta adds a sensor: applied live, reported, audited; it survives a restart with the broker unreachable', async () => {
    await setup({ extra: shadowSite() });
    start();
    await waitFor(
      () => bySensor('counter-1').length >= 5 && reported().edgegw !== undefined,
      20_000,
      'first report',
    );
    const first = reported();
    assert.deepEqual(first.sensors, [COUNTER1]);
    assert.equal((first.edgegw as { version: string }).version.length > 0, true);

    const v = shadow.setDesired(GW, SHADOW, { sensors: [COUNTER1, COUNTER2] });
    await waitFor(() => bySensor('counter-2').length >= 5, 20_000, 'readings of the sensor added remotely');
    await waitFor(() => change()?.result === 'applied', 10_000, 'the change reported');
    assert.equal(change()!.shadowVersion, v);
    // The overlay is part of the configuration's hash.
    const hashOf = (r: Record<string, unknown>) => (r.edgegw as { configHash: string }).configHash;
    assert.notEqual(hashOf(reported()), hashOf(first));
    assert.equal((await status()).config.hash, hashOf(reported()));
    assert.deepEqual(change()!.keys, ['sensors.counter-2 (added)']);
    assert.deepEqual(reported().sensors, [COUNTER1, COUNTER2]);
    // desired and reported agree: no delta left.
    const doc = shadow.document(GW, SHADOW)!;
    assert.deepEqual(doc.reported.sensors, doc.desired.sensors);
    assert.deepEqual(
      audits('shadow-change').map((a) => [a.shadow, a.shadowVersion, a.keys, a.refused]),
      [[SHADOW, v, ['sensors.counter-2 (added)'], []]],
    );
    const s = await status();
    assert.deepEqual(
      s.fleet.shadow.overlay.map((o) => [o.path, o.source]),
      [['sensors', 'shadow']],
    );
    const file = await stat(join(site.dir, 'data', 'fleet-overlay.json'));
    assert.equal(file.mode & 0o777, 0o600);
    await stop();

    // Offline restart: the stored overlay runs at once, before any broker is in reach.
    site.broker.cut();
    const checked = await runCli(['check-config', '-c', site.configFile]);
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(checked.stdout, /id: counter-2/);
    assert.match(checked.stdout, /# {3}sensors: from shadow edgegw v\d+/);
    out = '';
    start();
    await waitFor(
      async () => {
        const r = await runCli(['status', '--json', '-c', site.configFile]);
        if (r.code !== 0) return false;
        const st = JSON.parse(r.stdout) as { sensors: { id: string; readings?: number }[] };
        return st.sensors.some((x) => x.id === 'counter-2');
      },
      20_000,
      'counter-2 polled while offline',
      200,
    );
    const before = bySensor('counter-2').length;
    site.broker.restore();
    await waitFor(
      () => bySensor('counter-2').length > before + 5,
      30_000,
      'counter-2 readings after restore',
    );
    // The restarted daemon finds its change in reported and keeps it: nothing audited twice.
    await waitFor(
      async () => (await status()).fleet.shadow.lastChange?.shadowVersion === v,
      20_000,
      'the change reported before the restart, kept',
      200,
    );
    assert.equal(audits('shadow-change').length + audits('shadow-refused').length, 0);
    await stop();
  });

  it('a stored overlay altered by one byte, or open to others, is refused: the site file alone runs, and log, status and check-config say so', async () => {
    await setup({ extra: shadowSite() });
    start();
    await waitFor(() => reported().edgegw !== undefined, 20_000, 'first report');
    shadow.setDesired(GW, SHADOW, { sensors: [COUNTER1, COUNTER2] });
    await waitFor(() => change()?.result === 'applied', 20_000, 'the change applied');
    await stop();
    const file = join(site.dir, 'data', 'fleet-overlay.json');
    const good = await readFile(file, 'utf8');
    const body = JSON.parse(good) as { sealed: string };
    const sealed = Buffer.from(body.sealed, 'base64');
    sealed[sealed.length - 20]! ^= 0x01;
    await writeFile(file, JSON.stringify({ ...body, sealed: sealed.toString('base64') }), { mode: 0o600 });

    // Offline, so the shadow is not read again: only the stored file could bring counter-2 back.
    site.broker.cut();
    const checked = await runCli(['check-config', '-c', site.configFile]);
    assert.equal(checked.code, 0, checked.stderr);
    assert.doesNotMatch(checked.stdout, /id: counter-2/);
    assert.match(
      checked.stdout,
      /# stored overlay refused \(EDGEGW_E_FLEET_OVERLAY\): .*fleet-overlay\.json does not open with the queue keys: it failed authentication/,
    );
    out = '';
    start();
    await waitFor(
      async () => (await runCli(['status', '--json', '-c', site.configFile])).code === 0,
      20_000,
      'the daemon answers',
      200,
    );
    const s = await status();
    assert.deepEqual(
      s.sensors.map((x) => x.id),
      ['counter-1'],
    );
    assert.match(s.fleet.shadow.overlayRefused ?? '', /failed authentication/);
    const text = await runCli(['status', '-c', site.configFile]);
    assert.match(text.stdout, /warning {2}stored overlay refused: .* \(EDGEGW_E_FLEET_OVERLAY\)/);
    assert.ok(
      out
        .split('\n')
        .some((l) => l.includes('"code":"EDGEGW_E_FLEET_OVERLAY"') && l.includes('site file alone')),
      out,
    );
    await stop();

    // The untouched file open to group and others is refused the same way.
    await writeFile(file, good, { mode: 0o600 });
    const intact = await runCli(['check-config', '-c', site.configFile]);
    assert.match(intact.stdout, /id: counter-2/);
    await chmod(file, 0o644);
    const open = await runCli(['check-config', '-c', site.configFile]);
    assert.equal(open.code, 0, open.stderr);
    assert.doesNotMatch(open.stdout, /id: counter-2/);
    assert.match(open.stdout, /# stored overlay refused .*is not a private file of this user \(mode 644\)/);
  });

  it('an invalid delta is refused and reported with key paths; a non-settable key is refused as such', async () => {
    await setup({ extra: shadowSite() });
    // The first get meets a throttled service: it is asked again later, not given up on.
    shadow.failNext(429, 'Too Many Requests');
    start();
    await waitFor(() => reported().edgegw !== undefined, 30_000, 'first report');
    const gets = shadow.requests.filter((r) => r.topic.endsWith('/get'));
    assert.ok(gets.length >= 2, 'the get was sent again after the 429');
    const v = shadow.setDesired(GW, SHADOW, {
      queue: { flush: 'soon' },
      sensors: [COUNTER1, { id: 'bad', sim: { wave: 'counter' }, every: '0ms' }],
      uplink: { url: 'mqtts://elsewhere.example:8883' },
    });
    await waitFor(() => change()?.result === 'refused', 20_000, 'the refusal reported');
    const c = change()!;
    assert.equal(c.shadowVersion, v);
    assert.ok(
      c.errors!.some((e) => e.startsWith('queue.flush: ')),
      c.errors!.join('\n'),
    );
    assert.ok(
      c.errors!.some((e) => e.startsWith('sensors[1].every: ')),
      c.errors!.join('\n'),
    );
    assert.deepEqual(c.refused, ['uplink.url (not-settable)']);
    assert.deepEqual(reported().sensors, [COUNTER1]);
    assert.deepEqual(
      audits('shadow-refused').map((a) => [a.shadowVersion, a.keys, a.refused, a.errorKeys]),
      [[v, ['queue.flush', 'sensors'], ['uplink.url'], ['queue.flush', 'sensors[1].every']]],
    );
    // The running configuration goes on delivering.
    const n = bySensor('counter-1').length;
    await waitFor(() => bySensor('counter-1').length > n + 5, 10_000, 'readings go on');
    await stop();
  });

  it('a later desired version with only refused keys is reported as refused with its paths and audited', async () => {
    await setup({ extra: shadowSite() });
    start();
    await waitFor(() => reported().edgegw !== undefined, 20_000, 'first report');
    const v1 = shadow.setDesired(GW, SHADOW, { sensors: [COUNTER1, COUNTER2] });
    await waitFor(() => change()?.result === 'applied' && change()!.shadowVersion === v1, 20_000, 'applied');
    // Only keys a remote change may not set: the settable part is the overlay that runs already.
    const v2 = shadow.setDesired(GW, SHADOW, {
      gateway: { id: 'elsewhere' },
      uplink: { url: 'mqtts://elsewhere.example:8883' },
    });
    await waitFor(() => change()?.shadowVersion === v2, 20_000, 'the refusal-only version reported');
    const c = change()!;
    assert.equal(c.result, 'refused');
    assert.deepEqual(c.refused, ['gateway.id (not-settable)', 'uplink.url (not-settable)']);
    assert.deepEqual(c.keys, []);
    await waitFor(() => audits('shadow-refused').length > 0, 10_000, 'the refusal audited');
    assert.deepEqual(
      audits('shadow-refused').map((a) => [a.shadow, a.shadowVersion, a.keys, a.refused]),
      [[SHADOW, v2, [], ['gateway.id', 'uplink.url']]],
    );
    // The change of v1 still runs, audited once; a reconnect's get of the same desired audits nothing.
    assert.deepEqual(reported().sensors, [COUNTER1, COUNTER2]);
    assert.deepEqual(
      audits('shadow-change').map((a) => a.shadowVersion),
      [v1],
    );
    const s = await status();
    assert.equal(s.fleet.shadow.lastChange?.shadowVersion, v2);
    assert.equal(s.fleet.shadow.lastChange?.result, 'refused');
    await stop();
  });

  it('reported mirrors the running configuration, not a site file edited and never reloaded', async () => {
    await setup({ extra: shadowSite() });
    start();
    await waitFor(() => reported().edgegw !== undefined, 20_000, 'first report');
    assert.deepEqual(reported().queue, { flush: '100ms' });
    const hash = (reported().edgegw as { configHash: string }).configHash;
    // An edit with no SIGHUP does not run; a refusal-only delta makes the daemon report again.
    const text = await readFile(site.configFile, 'utf8');
    await writeFile(site.configFile, text.replace('flush: 100ms', 'flush: 2s'));
    const v = shadow.setDesired(GW, SHADOW, { gateway: { id: 'elsewhere' } });
    await waitFor(() => change()?.shadowVersion === v, 20_000, 'the report after the delta');
    assert.deepEqual(reported().queue, { flush: '100ms' });
    assert.equal((reported().edgegw as { configHash: string }).configHash, hash);
    await stop();
  });

  it("check-config says when it cannot read the stored overlay (another user's file) and how to see it", async function () {
    await setup({ extra: shadowSite() });
    // The daemon's overlay as root meets it in a service's dataDir: owned by another user.
    const data = join(site.dir, 'data');
    await mkdir(data, { recursive: true });
    const overlay = join(data, 'fleet-overlay.json');
    const stored = {
      shadow: SHADOW,
      shadowVersion: 3,
      appliedAt: 1,
      overlay: { 'log.level': 'debug' },
      tried: null,
    };
    await writeFile(overlay, JSON.stringify(stored), { mode: 0o600 });
    const uid = process.getuid?.() ?? 0;
    await chown(overlay, uid === 0 ? 65534 : uid + 1, 0).catch(() => undefined);
    if ((await stat(overlay)).uid === uid) return this.skip(); // cannot give a file away: not root
    const r = await runCli(['check-config', '-c', site.configFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /except: none/);
    assert.match(
      r.stdout,
      /# sources: unknown: the stored remote overlay could not be read \(.*fleet-overlay\.json/,
    );
    assert.match(r.stdout, /sudo -u edgegw edgegw check-config -c /);
    assert.match(r.stderr, /could not be read/);
  });

  it('the site file wins for local-only keys; one local-only sensor keeps the whole sensors list local', async () => {
    await setup({ extra: shadowSite(', localOnly: [queue.flush, sensors.counter-1]') });
    start();
    await waitFor(() => reported().edgegw !== undefined, 20_000, 'first report');
    const v = shadow.setDesired(GW, SHADOW, {
      queue: { flush: '5s' },
      sensors: [COUNTER1, COUNTER2],
      log: { level: 'debug' },
    });
    await waitFor(() => change()?.shadowVersion === v, 20_000, 'the change reported');
    const c = change()!;
    assert.equal(c.result, 'applied');
    assert.deepEqual(c.keys, ['log.level']);
    assert.deepEqual(c.refused, ['queue.flush (local-only)', 'sensors (local-only)']);
    // Local-only keys are not remotely settable here: reported leaves them out and names them.
    assert.equal(reported().queue, undefined);
    assert.equal(reported().sensors, undefined);
    assert.deepEqual((reported().edgegw as { localOnly: string[] }).localOnly, [
      'queue.flush',
      'sensors.counter-1',
    ]);
    assert.deepEqual(reported().log, { level: 'debug' });
    const s = await status();
    assert.deepEqual(
      s.sensors.map((x) => x.id),
      ['counter-1'],
    );
    assert.deepEqual(
      s.fleet.shadow.overlay.map((o) => o.path),
      ['log.level'],
    );
    assert.deepEqual(
      audits('shadow-change').map((a) => [a.shadowVersion, a.keys, a.refused]),
      [[v, ['log.level'], ['queue.flush', 'sensors']]],
    );
    await stop();
  });

  it('an uplink change that breaks the connection is reverted and reported', async () => {
    // The broker closes a connection on a payload over 2000 bytes; the site's messages stay under
    // 1 KiB. Six sensors make ~600 readings/s, several times what a 2000-byte message holds, so a
    // message a second is over the limit even on a loaded machine that skips polls.
    const sensors = [1, 2, 3, 4, 5, 6]
      .map((i) => `  - { id: c${i}, sim: { wave: counter }, every: 10ms }`)
      .join('\n');
    await setup({
      sensors,
      iotcore: { maxPayloadBytes: 2000 },
      extraUplink: '  limits: { maxPayloadBytes: 1KiB }',
      extraQueue: '  maxRecordReadings: 10',
      extra: shadowSite(),
    });
    start();
    await waitFor(
      () => bySensor('c1').length >= 20 && reported().edgegw !== undefined,
      20_000,
      'first report',
    );
    // One publish a second of up to 64 KiB: every message is over the broker's limit.
    const v = shadow.setDesired(GW, SHADOW, {
      uplink: { limits: { maxPayloadBytes: '64KiB', publishesPerSecond: 1 } },
    });
    await waitFor(() => change()?.result === 'reverted', 40_000, 'the revert reported');
    assert.match(change()!.reason!, /not reached within 8s/);
    assert.ok(site.broker.rules.refusedPayload > 0, 'the change did break the connection');
    assert.deepEqual(
      audits('shadow-reverted').map((a) => [a.shadowVersion, a.keys, a.refused]),
      [[v, ['uplink.limits.maxPayloadBytes', 'uplink.limits.publishesPerSecond'], []]],
    );
    const s = await status();
    assert.deepEqual(s.fleet.shadow.overlay, []);
    assert.equal(s.fleet.shadow.lastChange?.result, 'reverted');
    // Delivering again under the site's limits, and the refused desired state is not tried again.
    const n = bySensor('c1').length;
    await waitFor(() => bySensor('c1').length > n + 50, 20_000, 'readings after the revert');
    assert.equal(audits('shadow-change').length, 0);
    await stop();
  });
});
