// Certificate rotation in the real daemon (`edgegw run` in a child process) against the IoT Core
// provisioning simulator on a real TLS broker with a real test CA, asked by `edgegw rotate-certificate`
// over the status socket: a rotation that succeeds (the new certificate is in use, the old one kept
// as `.previous`), one whose new certificate the broker refuses (rolled back, reported, delivery
// goes on), one whose proof gets no PUBACK (rolled back on the timeout, same client id, back on the
// old certificate), throttled and unanswered requests, and a SIGKILL in the middle of the proof (the
// restart comes back on a working certificate). Every seq arrives, none is lost.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { JobsService } from '../../src/demo/iotcore-sim/jobs.js';
import { certificateId } from '../../src/demo/iotcore-sim/provisioning.js';
import { runCli, startCli, type CliResult } from '../helpers/cli.js';
import { makeIdentitySite, type IdentitySite } from '../helpers/identity.js';
import { deliveredPast, unexplainedSeqs, waitFor, type WireMessage, parseWire } from '../helpers/site.js';

let id: IdentitySite;

const TEMPLATES = {
  rotate: { thingName: () => 'test-gw1' },
  inactive: { thingName: () => 'test-gw1', certificateStatus: 'INACTIVE' as const },
  other: { thingName: () => 'someone-else' },
  // PUBACKs are held from the registration on: the proof publish waits on the new certificate.
  hold: { thingName: () => 'test-gw1', onRegistered: () => id.site.broker.pauseAcks() },
};

describe('certificate rotation (child process, IoT Core simulator)', function () {
  this.timeout(90_000);
  let child: ChildProcess | null = null;
  let done: Promise<CliResult>;
  let out = '';
  const messages: WireMessage[] = [];
  let unsubscribe: () => Promise<void>;

  const seqs = () => [...new Set(messages.flatMap((m) => m.recs.map((r) => r.seq)))].sort((a, b) => a - b);
  const maxSeq = () => seqs().at(-1) ?? 0;
  const start = () => {
    out = '';
    ({ child, done } = startCli(['run', '-c', id.site.configFile]));
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  };
  const rotate = () => runCli(['rotate-certificate', '-c', id.site.configFile]);
  const files = () => readdir(dirname(id.cert));
  /**
   * Every seq from 1 to the highest seen arrived (at least once) or is explained by a notice (a
   * SIGKILL with records held for their PUBACK leaves a `skipped` gap: write-behind).
   */
  const assertNoGap = () => {
    assert.deepEqual(unexplainedSeqs(messages, maxSeq()), [], 'every seq from 1 arrived or is explained');
  };

  async function setup(
    template: string,
    proofTimeout = '8s',
    extra = '',
    beforeStart: () => void = () => undefined,
  ): Promise<void> {
    messages.length = 0;
    id = await makeIdentitySite(TEMPLATES, {
      freshIdentity: false,
      logLevel: 'info',
      extra: `identity: { replyTimeout: 1s, rotation: { template: ${template}, proofTimeout: ${proofTimeout} } }${extra}`,
    });
    unsubscribe = await id.site.broker.subscribe(id.site.topic, (p: Buffer) => messages.push(parseWire(p)));
    beforeStart();
    start();
    await waitFor(() => maxSeq() >= 5, 20_000, 'first records');
  }

  afterEach(async () => {
    if (child !== null && child.exitCode === null) child.kill('SIGKILL');
    await done;
    child = null;
    await unsubscribe();
    await id.cleanup();
  });

  it('succeeds: the new certificate is in use, the old one is kept as .previous, nothing is lost', async () => {
    await setup('rotate');
    const oldCert = await readFile(id.cert);
    const oldKey = await readFile(id.key);
    const r = await rotate();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /certificate rotated/);
    const made = id.sim.certificates.at(-1)!;
    assert.match(r.stdout, new RegExp(`certificateId ${made.certificateId}`));
    assert.equal(made.status, 'ACTIVE');
    assert.equal(made.fromCsr, true);
    assert.deepEqual(await readFile(`${id.cert}.previous`), oldCert);
    assert.deepEqual(await readFile(`${id.key}.previous`), oldKey);
    assert.notDeepEqual(await readFile(id.cert), oldCert);
    assert.equal((await stat(id.key)).mode & 0o777, 0o600, 'the rotated key is private');
    assert.ok(!(await files()).some((n) => n.endsWith('.next')));
    assert.match(out, /"result":"rotated".*"audit":"certificate-rotation"/);
    // The old certificate is no longer accepted: delivery goes on, so the new one is in use.
    id.sim.deactivate(oldCert.toString());
    id.site.broker.dropConnections();
    const after = maxSeq();
    await waitFor(() => deliveredPast(messages, after + 20), 20_000, 'delivery on the new certificate');
    // A restart connects on the committed files and drops .previous.
    child!.kill('SIGTERM');
    assert.equal((await done).code, 0);
    start();
    const restarted = maxSeq();
    await waitFor(() => deliveredPast(messages, restarted + 10), 20_000, 'delivery after the restart');
    await waitFor(
      async () => !(await files()).some((n) => n.endsWith('.previous')),
      10_000,
      '.previous removed',
    );
    child!.kill('SIGTERM');
    assert.equal((await done).code, 0);
    assertNoGap();
    assert.doesNotMatch(out + r.stdout + r.stderr, /PRIVATE KEY/);
  });

  it('an IoT job rotates: SUCCEEDED with the new certificate id; a throttled one is FAILED with the reason', async () => {
    let jobs: JobsService | null = null;
    // Queued before the daemon starts: it runs right after the first CONNACK, so the new
    // certificate's CONNECT would come within IoT Core's one-per-second limit unless spaced.
    await setup('rotate', '8s', '\nfleet:\n  jobs: true', () => {
      const made = new JobsService(id.site.broker.aedes);
      made.createJob('test-gw1', 'j-rotate', { operation: 'rotate-certificate' });
      jobs = made;
    });
    assert.ok(jobs !== null);
    const svc: JobsService = jobs;
    try {
      const ended = (jobId: string) =>
        ['SUCCEEDED', 'FAILED', 'REJECTED'].includes(svc.execution('test-gw1', jobId)?.status ?? '');
      await waitFor(() => ended('j-rotate'), 40_000, 'the rotation job ended');
      assert.equal(id.site.broker.rules.refusedConnects, 0, 'no CONNECT within a second of the last');
      const done1 = svc.execution('test-gw1', 'j-rotate')!;
      assert.equal(done1.status, 'SUCCEEDED', JSON.stringify(done1.statusDetails));
      const made = id.sim.certificates.at(-1)!;
      assert.equal(done1.statusDetails.certificateId, made.certificateId);
      assert.ok((await files()).includes(`${basename(id.cert)}.previous`), 'the old certificate kept');
      // A throttled request: the job fails and says why.
      id.sim.mode = 'throttle';
      const before = await readFile(id.cert);
      svc.createJob('test-gw1', 'j-rotate-refused', { operation: 'rotate-certificate' });
      await waitFor(() => ended('j-rotate-refused'), 40_000, 'the second rotation job ended');
      const done2 = svc.execution('test-gw1', 'j-rotate-refused')!;
      assert.equal(done2.status, 'FAILED');
      assert.match(done2.statusDetails.reason ?? '', /ThrottlingException 429/);
      id.sim.mode = 'normal';
      assert.deepEqual(await readFile(id.cert), before, 'the certificate in use stays');
      const after = maxSeq();
      await waitFor(() => deliveredPast(messages, after + 10), 20_000, 'delivery after the job');
      child!.kill('SIGTERM');
      assert.equal((await done).code, 0);
      assertNoGap();
    } finally {
      svc.close();
    }
  });

  it('the broker refuses the new certificate: rolled back, reported, delivery goes on', async () => {
    await setup('inactive');
    const before = [await readFile(id.cert), await readFile(id.key)];
    const r = await rotate();
    assert.equal(r.code, 1);
    assert.match(r.stderr, /EDGEGW_E_ROTATION/);
    assert.match(r.stderr, /the broker refused the new certificate/);
    assert.match(r.stderr, /stays on its previous certificate/);
    assert.deepEqual([await readFile(id.cert), await readFile(id.key)], before);
    assert.deepEqual((await files()).sort(), [
      'ca.pem',
      'claim.key',
      'claim.pem',
      'client.key',
      'client.pem',
      'queue.key',
      'server.key',
      'server.pem',
    ]);
    assert.match(out, /"result":"rolled-back".*"audit":"certificate-rotation"/);
    const after = maxSeq();
    await waitFor(() => deliveredPast(messages, after + 20), 20_000, 'delivery after the rollback');
    child!.kill('SIGTERM');
    assert.equal((await done).code, 0);
    assertNoGap();
  });

  it('no PUBACK on the new certificate: rolled back on timeout, same client id, delivery goes on on the old one', async () => {
    await setup('hold', '3s');
    const before = [await readFile(id.cert), await readFile(id.key)];
    const oldId = certificateId(before[0]!.toString());
    const connects: string[] = [];
    const disconnects: string[] = [];
    const onConnect = (c: { id: string }) => connects.push(c.id);
    const onDisconnect = (c: { id: string }) => disconnects.push(c.id);
    const aedes = id.site.broker.aedes;
    aedes.on('client', onConnect);
    aedes.on('clientDisconnect', onDisconnect);
    try {
      const seen = id.sim.connections.length;
      const since = () => id.sim.connections.slice(seen);
      const gateways = () => id.site.broker.clients().filter((c) => c.clientId === 'test-gw1');
      const rotation = rotate();
      // While the proof waits for its PUBACK: the new certificate is connected under the gateway's
      // client id, and the old certificate's connection is gone.
      await waitFor(
        () =>
          since().some((c) => c.certificateId === id.sim.certificates.at(-1)?.certificateId && !c.refused),
        20_000,
        'the new certificate connected',
      );
      const newId = id.sim.certificates.at(-1)!.certificateId;
      await waitFor(() => connects.length > 0 && gateways().length === 1, 20_000, 'the new session alone');
      assert.equal(connects[0], 'test-gw1', 'the new connection uses gateway.id as its client id');
      assert.ok(disconnects.includes('test-gw1'), 'the old connection closed');

      const r = await rotation;
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /EDGEGW_E_ROTATION/);
      assert.match(r.stderr, /no CONNACK and PUBACK on the new certificate within 3 s/);
      assert.match(r.stderr, /stays on its previous certificate/);
      assert.match(out, /"result":"rolled-back".*"audit":"certificate-rotation"/);
      assert.deepEqual([await readFile(id.cert), await readFile(id.key)], before);
      assert.ok(!(await files()).some((n) => n.endsWith('.next') || n.endsWith('.previous')));
      // Back on the old certificate, under the same client id, and delivering once acks flow again.
      const afterNew = () => since().slice(since().findIndex((c) => c.certificateId === newId) + 1);
      await waitFor(
        () => afterNew().some((c) => c.certificateId === oldId && !c.refused),
        20_000,
        'reconnected with the old certificate',
      );
      assert.equal(id.sim.certificates.at(-1)!.status, 'ACTIVE', 'the new certificate was not refused');
      id.site.broker.resumeAcks();
      const after = maxSeq();
      await waitFor(() => deliveredPast(messages, after + 10), 20_000, 'delivery on the old certificate');
      assert.ok(connects.length >= 2 && connects.every((c) => c === 'test-gw1'), connects.join(' '));
      assert.equal(gateways().length, 1);
      child!.kill('SIGTERM');
      assert.equal((await done).code, 0);
      assertNoGap();
    } finally {
      aedes.off('client', onConnect);
      aedes.off('clientDisconnect', onDisconnect);
    }
  });

  it('throttled, unanswered and mis-registered requests fail with the reason and change nothing', async () => {
    await setup('other');
    const before = await readFile(id.cert);
    id.sim.mode = 'throttle';
    const throttled = await rotate();
    assert.equal(throttled.code, 1);
    assert.match(throttled.stderr, /ThrottlingException 429/);
    id.sim.mode = 'silent';
    const silent = await rotate();
    assert.equal(silent.code, 1);
    assert.match(silent.stderr, /no reply to CreateCertificateFromCsr .* within 1 s/);
    id.sim.mode = 'normal';
    const other = await rotate();
    assert.equal(other.code, 1);
    assert.match(other.stderr, /registered the certificate to thing someone-else, not test-gw1/);
    assert.deepEqual(await readFile(id.cert), before);
    const after = maxSeq();
    await waitFor(() => deliveredPast(messages, after + 10), 20_000, 'delivery goes on');
    child!.kill('SIGTERM');
    assert.equal((await done).code, 0);
    assertNoGap();
  });

  it('SIGKILL in the middle of the proof: the restart comes back on the old, working certificate', async () => {
    await setup('hold');
    const before = [await readFile(id.cert), await readFile(id.key)];
    const connections = id.site.broker.published.connections;
    const rotation = rotate();
    await waitFor(async () => (await files()).includes(`${basename(id.cert)}.next`), 20_000, '.next files');
    await waitFor(
      () => id.site.broker.published.connections > connections,
      20_000,
      'the new certificate connected',
    );
    child!.kill('SIGKILL');
    await done;
    const answer = await rotation;
    assert.notEqual(answer.code, 0);
    id.site.broker.resumeAcks();
    // Only the old certificate may work now: the broker refuses the new one from here on.
    id.sim.deactivate(id.sim.certificates.at(-1)!.certificateId);
    start();
    const restarted = maxSeq();
    await waitFor(() => deliveredPast(messages, restarted + 10), 20_000, 'delivery after the restart');
    assert.match(out, /"result":"discarded-next".*"audit":"certificate-rotation"/);
    assert.deepEqual([await readFile(id.cert), await readFile(id.key)], before);
    assert.ok(!(await files()).some((n) => n.endsWith('.next')));
    child!.kill('SIGTERM');
    assert.equal((await done).code, 0);
    assertNoGap();
  });

  it('SIGTERM during a rotation: the stop stays bounded, the rotation is abandoned, the old certificate stays', async () => {
    await setup('hold', '5m');
    const before = [await readFile(id.cert), await readFile(id.key)];
    const connections = id.site.broker.published.connections;
    const rotation = rotate();
    await waitFor(
      () => id.site.broker.published.connections > connections,
      20_000,
      'the new certificate connected',
    );
    const t0 = Date.now();
    child!.kill('SIGTERM');
    const stopped = await done;
    assert.equal(stopped.code, 0);
    // The drain waits up to 5 s for PUBACKs (held here); the 5-minute proof is not waited for.
    assert.ok(Date.now() - t0 < 12_000, `stopped after ${Date.now() - t0} ms`);
    assert.notEqual((await rotation).code, 0);
    assert.match(out, /"result":"rolled-back".*"audit":"certificate-rotation"/);
    id.site.broker.resumeAcks();
    id.sim.deactivate(id.sim.certificates.at(-1)!.certificateId);
    start();
    const restarted = maxSeq();
    await waitFor(() => deliveredPast(messages, restarted + 10), 20_000, 'delivery after the restart');
    assert.deepEqual([await readFile(id.cert), await readFile(id.key)], before);
    child!.kill('SIGTERM');
    assert.equal((await done).code, 0);
    assertNoGap();
  });
});
