// The systemd watchdog means something (issue 7): `edgegw run` as a real process, with a
// NOTIFY_SOCKET this test binds itself (no systemd as PID 1 here), sends WATCHDOG=1 while healthy
// and through a broker outage, and none once its pipeline is stalled. The stall is a real one: the
// queue's filesystem (ext4 on a loop device) is frozen with fsfreeze(8), so the commit in flight
// blocks in the kernel, as on an SD card or USB disk that stopped answering. Thawing it lets the
// pings resume. Needs root (mount, fsfreeze), as CI runs.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startCli } from '../helpers/cli.js';
import { makeSite, waitFor, type TestSite } from '../helpers/site.js';
import { createUnixDgramSocket, type UnixDgramSocket } from '../../src/status/unix-dgram.js';

const run = promisify(execFile);

/** ext4 on a loop device mounted at `at`: fsfreeze works on it (not on tmpfs). */
async function freezableFs(
  at: string,
): Promise<{ freeze(): Promise<void>; thaw(): Promise<void>; cleanup(): Promise<void> }> {
  const image = `${at}.img`;
  await writeFile(image, '');
  await run('truncate', ['-s', '64M', image]);
  await run('mkfs.ext4', ['-q', '-F', image]);
  await mkdir(at, { recursive: true });
  await run('mount', ['-o', 'loop', image, at]);
  let frozen = false;
  let mounted = true;
  return {
    freeze: async () => {
      await run('fsfreeze', ['--freeze', at]);
      frozen = true;
    },
    thaw: async () => {
      if (!frozen) return;
      frozen = false;
      await run('fsfreeze', ['--unfreeze', at]);
    },
    cleanup: async () => {
      if (frozen) await run('fsfreeze', ['--unfreeze', at]).catch(() => undefined);
      frozen = false;
      if (mounted) await run('umount', [at]); // a loop mount detaches its device on umount
      mounted = false;
      await rm(image, { force: true });
    },
  };
}

describe('edgegw run and the systemd watchdog (child process, real stall)', function () {
  this.timeout(120_000);
  let site: TestSite;
  let fs: Awaited<ReturnType<typeof freezableFs>> | null = null;
  let systemd: UnixDgramSocket | null = null;
  let kill: (() => Promise<unknown>) | null = null;

  beforeEach(async () => {
    site = await makeSite({
      sensors: '  - { id: counter-1, sim: { wave: counter }, every: 50ms }',
      logLevel: 'info',
    });
    // The queue lives on the freezable filesystem (a folder below it: lost+found is not a queue).
    const yaml = await readFile(site.configFile, 'utf8');
    await writeFile(site.configFile, yaml.replace('dataDir: ./data', 'dataDir: ./fs/queue'));
    fs = await freezableFs(join(site.dir, 'fs'));
  });
  afterEach(async () => {
    await fs?.thaw();
    await kill?.(); // the filesystem cannot be unmounted while the daemon holds the queue open
    kill = null;
    systemd?.close();
    systemd = null;
    await fs?.cleanup();
    fs = null;
    await site.cleanup();
  });

  it('pings while healthy and through a broker outage, not while the queue disk hangs, again once it answers', async () => {
    const path = join(site.dir, 'notify');
    const got: string[] = [];
    systemd = createUnixDgramSocket();
    systemd.on('message', (m) => got.push(m.toString('utf8')));
    systemd.bind(path);
    // WatchdogSec=4s: a ping every 2 s, a stall found within 2 s of its deadline.
    const { child, done } = startCli(['run', '-c', site.configFile], {
      NOTIFY_SOCKET: path,
      WATCHDOG_USEC: '4000000',
    });
    kill = () => (child.kill('SIGKILL'), done);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const pings = () => got.filter((m) => m === 'WATCHDOG=1').length;
    const statuses = () => got.filter((m) => m.startsWith('STATUS='));

    await waitFor(() => got.some((m) => m.startsWith('READY=1')), 20_000, 'READY=1');
    await waitFor(() => pings() >= 2, 20_000, 'pings while healthy');
    await waitFor(
      () =>
        statuses().some((s) => /^STATUS=connected; backlog \d+ readings(, oldest \d+s)?; dropped 0$/.test(s)),
      20_000,
      'a STATUS= line: connected, backlog, drops',
    );

    // A broker outage is no stall: the uplink retries with backoff, the pings go on.
    await site.broker.close();
    await waitFor(
      () =>
        statuses().some((s) => /^STATUS=(backoff|connecting) \(EDGEGW_E_UPLINK_\w+\); backlog \d+/.test(s)),
      20_000,
      'STATUS= showing the outage',
    );
    const inOutage = pings();
    await waitFor(() => pings() >= inOutage + 3, 20_000, 'pings during the outage');
    assert.doesNotMatch(out, /EDGEGW_E_WATCHDOG/);

    // The disk stops answering: the commit in flight blocks, the pings stop.
    await fs!.freeze();
    const stalled = (m: string) => m.startsWith('STATUS=STALLED: batcher: commit overdue by');
    await waitFor(() => got.some(stalled), 20_000, 'STATUS= naming the stall');
    const first = got.findIndex(stalled);
    // Two more status refreshes (5 s apart) while stalled: more than three ping intervals.
    await waitFor(() => got.filter(stalled).length >= 3, 20_000, 'status refreshes while stalled');
    const during = got.slice(first);
    assert.ok(!during.includes('WATCHDOG=1'), `no ping while stalled: ${during.join(' | ')}`);
    await waitFor(() => /"code":"EDGEGW_E_WATCHDOG"/.test(out), 5000, 'the stall in the log');

    // The disk answers again: commits complete, the pings resume (systemd would restart sooner).
    await fs!.thaw();
    const atThaw = got.length;
    await waitFor(() => got.slice(atThaw).includes('WATCHDOG=1'), 20_000, 'pings after the thaw');
    assert.match(out, /watchdog pings resumed/);

    child.kill('SIGTERM');
    const r = await done;
    kill = null;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(got.includes('STOPPING=1'));
  });
});
