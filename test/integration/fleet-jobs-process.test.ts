// Remote actions through AWS IoT Jobs (issue 11), on the real `edgegw run` in a child process, a
// real TLS broker and the in-repo Jobs simulator attached to it: each operation runs and reports
// its status and statusDetails; an unknown operation is rejected with a reason; a job in progress
// when the daemon is SIGKILLed is reported FAILED after the restart (never run twice, never
// forgotten), and the jobs queued behind it run; a job that cannot be recorded on disk is FAILED
// with the reason and the daemon runs on; a rejected final update is sent again, never by running
// the job again; a throttled start-next is asked again.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { JobsService, type Execution } from '../../src/demo/iotcore-sim/jobs.js';
import { existsSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, startCli, type CliResult } from '../helpers/cli.js';
import { makeSite, waitFor, type TestSite } from '../helpers/site.js';

const GW = 'jobs-gw1';

describe('remote actions through AWS IoT Jobs (child process)', function () {
  this.timeout(90_000);
  let site: TestSite;
  let jobs: JobsService;
  let child: ChildProcess | null = null;
  let done: Promise<CliResult> = Promise.resolve({ code: 0, stdout: '', stderr: '' } as CliResult);
  let out = '';

  beforeEach(async () => {
    out = '';
    site = await makeSite({
      gatewayId: GW,
      logLevel: 'info',
      extra: 'fleet:\n  jobs: true',
      extraQueue: '  rotatedKeysDir: ./keys',
    });
    jobs = new JobsService(site.broker.aedes);
  });
  afterEach(async () => {
    if (child !== null && child.exitCode === null) child.kill('SIGKILL');
    await done;
    child = null;
    jobs.close();
    await site.cleanup();
  });
  function start(): void {
    ({ child, done } = startCli(['run', '-c', site.configFile]));
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  }
  const ended = (id: string) =>
    ['SUCCEEDED', 'FAILED', 'REJECTED'].includes(jobs.execution(GW, id)?.status ?? '');
  const exec = (id: string): Execution => jobs.execution(GW, id)!;
  const audits = () => out.split('\n').filter((l) => l.includes('"audit":"job"'));

  it('runs each operation and reports its status; an unknown operation is rejected', async () => {
    start();
    jobs.createJob(GW, 'j-reload', { operation: 'reload' });
    jobs.createJob(GW, 'j-level', { operation: 'set-log-level', level: 'debug' });
    jobs.createJob(GW, 'j-level-bad', { operation: 'set-log-level', level: 'loud' });
    jobs.createJob(GW, 'j-diag', { operation: 'diagnostics' });
    jobs.createJob(GW, 'j-shell', { operation: 'sh -c reboot' });
    await waitFor(
      () => ['j-reload', 'j-level', 'j-level-bad', 'j-diag', 'j-shell'].every(ended),
      40_000,
      'every job ended',
    );

    const reload = exec('j-reload');
    assert.equal(reload.status, 'SUCCEEDED');
    assert.deepEqual(reload.history, ['QUEUED', 'IN_PROGRESS', 'IN_PROGRESS', 'SUCCEEDED']);
    assert.equal(reload.statusDetails.operation, 'reload');
    assert.equal(reload.statusDetails.changed, '0');
    assert.match(reload.statusDetails.configHash!, /^[0-9a-f]{12}$/);

    const level = exec('j-level');
    assert.equal(level.status, 'SUCCEEDED');
    assert.equal(level.statusDetails.previous, 'info');
    assert.equal(level.statusDetails.level, 'debug');
    // The level stays set: the next job finds it.
    jobs.createJob(GW, 'j-level-back', { operation: 'set-log-level', level: 'info' });
    await waitFor(() => ended('j-level-back'), 20_000, 'the level set back');
    assert.equal(exec('j-level-back').statusDetails.previous, 'debug');

    const bad = exec('j-level-bad');
    assert.equal(bad.status, 'FAILED');
    assert.match(bad.statusDetails.reason!, /level must be one of fatal, error/);

    const diag = exec('j-diag');
    assert.equal(diag.status, 'SUCCEEDED');
    const parts = Number(diag.statusDetails.parts);
    assert.ok(parts >= 1);
    for (const v of Object.values(diag.statusDetails)) assert.ok(v.length <= 1024);
    const report = JSON.parse(
      Array.from({ length: parts }, (_, i) => diag.statusDetails[`report${i}`]).join(''),
    ) as { gateway: string; doctor: string[]; sensors: Record<string, unknown>[] };
    assert.equal(report.gateway, GW);
    assert.ok(
      report.doctor.some((l) => l.endsWith(' config')),
      report.doctor.join('\n'),
    );
    assert.equal(diag.statusDetails.truncated, 'no');
    // The doctor's FAIL and WARN lines carry what was found, not just the check's name.
    assert.ok(
      report.doctor.filter((l) => /^(FAIL|WARN) /.test(l)).every((l) => /^\w+ [^:]+: ./.test(l)),
      report.doctor.join('\n'),
    );
    assert.ok(
      report.sensors.every((s) => !('value' in s)),
      'no reading value in the report',
    );

    const shell = exec('j-shell');
    assert.equal(shell.status, 'REJECTED');
    assert.match(
      shell.statusDetails.reason!,
      /unknown operation "sh -c reboot"; one of: reload, set-log-level/,
    );
    await waitFor(() => audits().length === 6, 5000, 'an audit entry per job');
    child!.kill('SIGTERM');
    assert.equal((await done).code, 0);
  });

  it('a job in progress when the daemon is SIGKILLed is reported FAILED after the restart; the next one runs', async () => {
    start();
    await waitFor(() => site.broker.clients().some((c) => c.clientId === GW), 20_000, 'the daemon connected');
    // Held PUBACKs keep the daemon inside the job, after its IN_PROGRESS update reached the service.
    site.broker.pauseAcks();
    jobs.createJob(GW, 'j-1', { operation: 'diagnostics' });
    jobs.createJob(GW, 'j-2', { operation: 'reload' });
    await waitFor(() => exec('j-1').history.length === 3, 20_000, 'the IN_PROGRESS update of j-1');
    child!.kill('SIGKILL');
    await done;
    site.broker.resumeAcks();
    assert.equal(exec('j-1').status, 'IN_PROGRESS');
    start();
    await waitFor(() => ended('j-1') && ended('j-2'), 30_000, 'both jobs ended');
    assert.equal(exec('j-1').status, 'FAILED');
    assert.match(exec('j-1').statusDetails.reason!, /the daemon stopped while this job ran/);
    assert.equal(exec('j-2').status, 'SUCCEEDED');
    child!.kill('SIGTERM');
    assert.equal((await done).code, 0);
  });

  it('a job that cannot be recorded in gateway.dataDir is FAILED with the reason, not run; the daemon runs on', async () => {
    start();
    await waitFor(() => site.broker.clients().some((c) => c.clientId === GW), 20_000, 'the daemon connected');
    // A folder where the marker's temporary file goes: every write of the marker fails (EISDIR).
    await mkdir(join(site.dir, 'data', 'fleet-job.json.tmp'));
    jobs.createJob(GW, 'j-level', { operation: 'set-log-level', level: 'debug' });
    await waitFor(() => ended('j-level'), 20_000, 'the first job ended');
    const first = exec('j-level');
    assert.equal(first.status, 'FAILED');
    assert.match(first.statusDetails.reason!, /^cannot record the job in .*data: EISDIR; it was not run/);
    // Not run: the level is unchanged, and no IN_PROGRESS was reported.
    assert.deepEqual(first.history, ['QUEUED', 'IN_PROGRESS', 'FAILED']);
    jobs.createJob(GW, 'j-reload', { operation: 'reload' });
    await waitFor(() => ended('j-reload'), 20_000, 'the second job ended');
    assert.equal(exec('j-reload').status, 'FAILED');
    assert.equal(child!.exitCode, null, 'the daemon is still running');
    const st = await runCli(['status', '--json', '-c', site.configFile]);
    assert.equal(st.code, 0, st.stderr);
    const fleet = (JSON.parse(st.stdout) as { fleet: { jobs: { lastError: string | null } } }).fleet;
    assert.match(fleet.jobs.lastError ?? '', /cannot be recorded in .*data \(EISDIR\)/);
    child!.kill('SIGTERM');
    assert.equal((await done).code, 0);
  });

  it('a rejected final update is sent again until accepted; the job is not run again', async () => {
    start();
    await waitFor(() => site.broker.clients().some((c) => c.clientId === GW), 20_000, 'the daemon connected');
    jobs.failNext('final-update', 'InternalError', 'simulated service fault');
    jobs.createJob(GW, 'j-level', { operation: 'set-log-level', level: 'debug' });
    await waitFor(() => ended('j-level'), 20_000, 'the job ended');
    const e = exec('j-level');
    assert.equal(e.status, 'SUCCEEDED');
    assert.deepEqual(e.history, ['QUEUED', 'IN_PROGRESS', 'IN_PROGRESS', 'SUCCEEDED']);
    assert.equal(e.statusDetails.previous, 'info');
    const updates = jobs.requests.filter((r) => r.topic.endsWith('/j-level/update'));
    assert.deepEqual(
      updates.map((u) => u.body.status),
      ['IN_PROGRESS', 'SUCCEEDED', 'SUCCEEDED'],
    );
    await waitFor(() => audits().length === 1, 5000, 'the audit entry');
    // The record of the job is gone once the service accepted the update.
    await waitFor(
      async () =>
        !(await stat(join(site.dir, 'data', 'fleet-job.json')).then(
          () => true,
          () => false,
        )),
      5000,
      'fleet-job.json removed',
    );
    // Details the service refuses (InvalidRequest) go again as a short reason, the status kept.
    jobs.failNext('final-update', 'InvalidRequest', 'statusDetails.report0 is too long');
    jobs.createJob(GW, 'j-reload', { operation: 'reload' });
    await waitFor(() => ended('j-reload'), 20_000, 'the second job ended');
    const r = exec('j-reload');
    assert.equal(r.status, 'SUCCEEDED');
    assert.equal(r.statusDetails.detailsRefused, 'InvalidRequest: statusDetails.report0 is too long');
    await waitFor(() => audits().length === 2, 5000, 'the second audit entry');
    child!.kill('SIGTERM');
    assert.equal((await done).code, 0);
  });

  it('a throttled start-next is asked again with backoff', async () => {
    jobs.failNext('start-next', 'RequestThrottled', 'Rate exceeded', 2);
    jobs.createJob(GW, 'j-reload', { operation: 'reload' });
    start();
    await waitFor(() => ended('j-reload'), 20_000, 'the job ended');
    assert.equal(exec('j-reload').status, 'SUCCEEDED');
    const asks = jobs.requests.filter((r) => r.topic.endsWith('/jobs/start-next')).length;
    assert.ok(asks >= 3, `start-next asked ${asks} times`);
    child!.kill('SIGTERM');
    assert.equal((await done).code, 0);
  });

  interface KeyedStatus {
    queue: { records: number; nextSeq: number; keys?: { sealing: string | null; older: number } };
    counters: { quarantined: number };
  }
  /** The daemon's status, or null while it does not answer yet. */
  const status = async (): Promise<KeyedStatus | null> => {
    const r = await runCli(['status', '--json', '-c', site.configFile]);
    return r.code === 0 ? (JSON.parse(r.stdout) as KeyedStatus) : null;
  };
  const rotate = async (id: string): Promise<{ keyId: string; fromSeq: number }> => {
    jobs.createJob(GW, id, { operation: 'rotate-queue-key' });
    await waitFor(() => ended(id), 20_000, `the rotation job ${id} ended`);
    const e = exec(id);
    assert.equal(e.status, 'SUCCEEDED', JSON.stringify(e.statusDetails));
    assert.match(e.statusDetails.keyId!, /^[0-9a-f]{32}$/);
    return { keyId: e.statusDetails.keyId!, fromSeq: Number(e.statusDetails.sealsFromSeq) };
  };
  /** Records queued up to (not including) seq `n`: data PUBACKs held, or the broker cut. */
  const queuedTo = (n: number, what: string) =>
    waitFor(async () => ((await status())?.queue.nextSeq ?? 0) >= n, 30_000, what, 200);
  const verify = async (): Promise<{ ranges: string[][]; stdout: string }> => {
    const v = await runCli(['queue', 'verify', '-c', site.configFile]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /all \d+ records authenticate/);
    const ranges = [...v.stdout.matchAll(/^key id ([0-9a-f]{32}) sealed from seq (\d+)$/gm)];
    return { ranges: ranges.map((m) => [m[1]!, m[2]!]), stdout: v.stdout };
  };
  const inspect = async (): Promise<{ quarantined: number; totals: Record<string, number> }> => {
    const r = await runCli(['queue', 'inspect', '--json', '-c', site.configFile]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { quarantined: number; totals: Record<string, number> };
  };
  const stop = async (): Promise<void> => {
    child!.kill('SIGTERM');
    assert.equal((await done).code, 0);
  };
  // The data topic's PUBACKs held, the jobs' flowing: a backlog queues while jobs still run.
  const holdData = () => site.broker.pauseAcks((topic) => !topic.startsWith('$aws/'));

  it('rotate-queue-key seals at once while the daemon runs; both backlogs are delivered; the drained rotated key is retired', async function () {
    this.timeout(150_000);
    start();
    await waitFor(() => site.broker.clients().some((c) => c.clientId === GW), 20_000, 'the daemon connected');
    // A first rotated key, then a backlog under it (acks held), then a second key, live.
    const k1 = await rotate('j-rot1');
    holdData();
    await queuedTo(k1.fromSeq + 4, 'a backlog under the first rotated key');
    const k2 = await rotate('j-rot2');
    assert.ok(k2.fromSeq > k1.fromSeq + 3, `${k2.fromSeq} seals after the backlog`);
    assert.equal((await stat(join(site.dir, 'keys', `${k2.keyId}.key`))).mode & 0o777, 0o600);
    // The broker cut: records sealed with the new key queue behind the old ones.
    site.broker.cut();
    site.broker.resumeAcks();
    await queuedTo(k2.fromSeq + 3, 'records under the second key');
    const live = (await status())!;
    assert.deepEqual(live.queue.keys, { sealing: k2.keyId, older: 1 });
    const text = await runCli(['status', '-c', site.configFile]);
    assert.match(
      text.stdout,
      new RegExp(`sealing with key id ${k2.keyId} · 1 older key still with queued records`),
    );
    await stop();

    // Stopped: verify opens every record with its own key; the ranges say which.
    const v = await verify();
    assert.deepEqual(
      v.ranges.slice(-2),
      [
        [k1.keyId, String(k1.fromSeq)],
        [k2.keyId, String(k2.fromSeq)],
      ],
      v.stdout,
    );
    // After a restart the new key still seals (broker still cut).
    start();
    const before = (await inspectWhileRunning()) ?? 0;
    await queuedTo(before + 2, 'records sealed after the restart');
    assert.equal((await status())!.queue.keys!.sealing, k2.keyId);
    await stop();
    assert.equal((await verify()).ranges.at(-1)![0], k2.keyId, 'no new range at the restart');

    // The broker back: everything committed is delivered, nothing quarantined.
    site.broker.restore();
    start();
    await waitFor(
      async () => {
        const s = await status();
        return s !== null && s.queue.records === 0 && s.queue.keys?.older === 0;
      },
      40_000,
      'the backlog delivered and the old keys drained',
      200,
    );
    assert.equal((await status())!.counters.quarantined, 0);
    // The drained rotated key is moved aside; the site file's key file and the sealing key stay.
    await waitFor(
      () => existsSync(join(site.dir, 'keys', 'retired', `${k1.keyId}.key`)),
      10_000,
      'the first rotated key retired',
    );
    assert.ok(!existsSync(join(site.dir, 'keys', `${k1.keyId}.key`)));
    assert.ok(existsSync(join(site.dir, 'keys', `${k2.keyId}.key`)));
    assert.ok(existsSync(join(site.dir, 'pki', 'queue.key')), 'queue.keyFile is never moved');
    await stop();
    const q = await inspect();
    assert.equal(q.quarantined, 0);
    assert.equal(q.totals.deliveredRecords, q.totals.committedRecords, JSON.stringify(q.totals));

    // The next start is not refused without the retired key, and still seals with the new one.
    start();
    await waitFor(async () => (await status())?.queue.keys?.sealing === k2.keyId, 20_000, 'restarted', 200);
    await stop();
    const after = await verify();
    assert.deepEqual(after.ranges, [[k2.keyId, after.ranges[0]![1]]], after.stdout);
  });

  it('rotate-queue-key then SIGKILL at once: the restart seals with the new key and opens the older records', async function () {
    this.timeout(120_000);
    start();
    await waitFor(() => site.broker.clients().some((c) => c.clientId === GW), 20_000, 'the daemon connected');
    holdData();
    await queuedTo(4, 'a backlog under the old key');
    const k = await rotate('j-rot');
    child!.kill('SIGKILL');
    await done;
    site.broker.cut();
    site.broker.resumeAcks();
    start();
    await waitFor(async () => (await status())?.queue.keys?.sealing === k.keyId, 20_000, 'restarted', 200);
    const next = (await status())!.queue.nextSeq;
    await queuedTo(next + 2, 'records after the restart');
    await stop();
    const v = await verify();
    assert.equal(v.ranges.at(-1)![0], k.keyId, v.stdout);
    assert.equal(v.ranges.length, 2, v.stdout);

    site.broker.restore();
    start();
    await waitFor(async () => (await status())?.queue.records === 0, 40_000, 'the backlog delivered', 200);
    await stop();
    const q = await inspect();
    assert.equal(q.quarantined, 0);
    assert.equal(q.totals.deliveredRecords, q.totals.committedRecords, JSON.stringify(q.totals));
  });

  /** The next seq of the running daemon once it answers. */
  async function inspectWhileRunning(): Promise<number | null> {
    let n: number | null = null;
    await waitFor(
      async () => {
        n = (await status())?.queue.nextSeq ?? null;
        return n !== null;
      },
      20_000,
      'the daemon answers',
      200,
    );
    return n;
  }
});
