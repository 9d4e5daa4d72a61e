// No signal bypasses the clean stop (DESIGN.md §2.7): `edgegw run` as a real process keeps running
// through SIGHUP (a reload; reload-process.test.ts tests what it applies), SIGUSR1 (no inspector), SIGUSR2 and SIGPIPE, and
// stops cleanly, losing nothing, on SIGTERM and SIGQUIT.

import assert from 'node:assert/strict';
import { runCli, startCli } from '../helpers/cli.js';
import { waitFor, type TestSite, subscribedSite } from '../helpers/site.js';

describe('edgegw run and signals (child process)', function () {
  this.timeout(60_000);
  const fixture = subscribedSite({
    sensors: '  - { id: counter-1, sim: { wave: counter }, every: 20ms }',
    logLevel: 'info',
  });
  let site: TestSite;
  beforeEach(() => {
    site = fixture.site;
  });

  const readings = fixture.readings;

  /** After a clean stop, every seq is either at the broker or still queued, and none was lost. */
  async function assertNothingLost(): Promise<void> {
    const inspect = await runCli(['queue', 'inspect', '--json', '-c', site.configFile]);
    assert.equal(inspect.code, 0, inspect.stderr);
    const q = JSON.parse(inspect.stdout) as { nextSeq: number; firstSeq: number | null; records: number };
    const have = new Set(readings().map((r) => r.seq));
    if (q.firstSeq !== null) for (let s = q.firstSeq; s < q.nextSeq; s++) have.add(s);
    for (let s = 1; s < q.nextSeq; s++) assert.ok(have.has(s), `seq ${s} neither delivered nor queued`);
    if (q.records === 0) {
      // Everything was delivered: the counter's values arrive without a gap.
      const values = [...new Set(readings().map((r) => Number(r.value)))].sort((a, b) => a - b);
      assert.deepEqual(
        values,
        Array.from({ length: values.length }, (_, i) => i),
      );
    }
  }

  it('keeps running and delivering through SIGHUP, SIGUSR1, SIGUSR2 and SIGPIPE; SIGTERM then stops cleanly', async () => {
    const { child, done } = startCli(['run', '-c', site.configFile]);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(() => readings().length >= 10, 20_000, 'readings at the broker');

    child.kill('SIGHUP');
    await waitFor(() => /"audit":"reload"/.test(out), 10_000, 'the reload audit entry');
    for (const sig of ['SIGUSR1', 'SIGUSR2', 'SIGPIPE'] as const) child.kill(sig);
    await waitFor(() => /SIGUSR2 ignored/.test(out), 10_000, 'the SIGUSR2 line');
    const before = readings().length;
    await waitFor(() => readings().length >= before + 20, 20_000, 'readings after the signals');
    assert.equal(child.exitCode, null, 'still running');

    child.kill('SIGTERM');
    const r = await done;
    assert.equal(r.signal, null);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /Debugger listening/, 'SIGUSR1 must not open the inspector');
    const hup = r.stdout.split('\n').find((l) => l.includes('"audit":"reload"'));
    assert.deepEqual(
      (JSON.parse(hup!) as { changed: unknown }).changed,
      [],
      'an unchanged file changes nothing',
    );
    assert.match(r.stdout, /"signal":"SIGTERM".*"msg":"stopping"/);
    await assertNothingLost();
  });

  it('stops cleanly on SIGQUIT (exit 0, nothing lost)', async () => {
    const { child, done } = startCli(['run', '-c', site.configFile]);
    await waitFor(() => readings().length >= 10, 20_000, 'readings at the broker');
    child.kill('SIGQUIT');
    const r = await done;
    assert.equal(r.signal, null);
    assert.equal(r.code, 0, r.stderr);
    await assertNothingLost();
  });
});
