// GPIO inside the running daemon: `edgegw run` in a private mount namespace whose /sys/class is a
// fake sysfs tree (as in gpio-sysfs.test.ts), a board profile resolving GPIO17/GPIO27 through the
// chip base found at run time, and readings arriving at the broker as the test writes pin values.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN } from '../helpers/cli.js';
import { makeFakeSysfs, namespaceProblem, type FakeSysfs } from '../helpers/gpio-sysfs.js';
import { decodeWire, makeSite, waitFor, type TestSite, type WireMessage } from '../helpers/site.js';

describe('GPIO in the running daemon (fake sysfs in a mount namespace)', function () {
  this.timeout(60_000);
  let site: TestSite;
  let sysfs: FakeSysfs;

  before(function () {
    const problem = namespaceProblem();
    // Not a skip: this machine must be able to run it; say why it cannot.
    assert.equal(problem, null, `cannot run the GPIO daemon test: ${problem ?? ''}`);
  });

  beforeEach(async () => {
    // Base 0, as on a Pi 4 with a kernel before 6.6 (the profile's default is 512): GPIO17 → 17.
    sysfs = makeFakeSysfs({ pins: { 17: 0, 27: 0 } });
    mkdirSync(join(sysfs.gpioDir, 'gpiochip0'));
    writeFileSync(join(sysfs.gpioDir, 'gpiochip0', 'label'), 'pinctrl-bcm2711\n');
    writeFileSync(join(sysfs.gpioDir, 'gpiochip0', 'base'), '0\n');
    site = await makeSite({
      sensors: [
        '  - { id: door-1, gpio: { pin: GPIO17, edge: both } }',
        '  - { id: water-pulses, gpio: { pin: GPIO27, edge: rising, mode: counter }, every: 300ms }',
      ].join('\n'),
    });
    const yaml = readFileSync(site.configFile, 'utf8');
    writeFileSync(
      site.configFile,
      yaml.replace('  dataDir: ./data', '  profile: raspberry-pi-4\n  dataDir: ./data'),
    );
  });
  afterEach(async () => {
    await site.cleanup();
    sysfs.cleanup();
  });

  it('level edges and counted pulses reach the broker; SIGTERM stops cleanly', async () => {
    const messages: WireMessage[] = [];
    const unsubscribe = await site.broker.subscribe(site.topic, (p: Buffer) => {
      messages.push(JSON.parse(p.toString('utf8')) as WireMessage);
    });
    const readings = (id: string) => messages.flatMap(decodeWire).filter((r) => r.sensor === id);
    // unshare execs sh, which execs node: one process, so the test's signals reach the daemon.
    const child = spawn(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        'mount --bind "$0" /sys/class && exec "$1" "$2" run -c "$3"',
        sysfs.classDir,
        process.execPath,
        BIN,
        site.configFile,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NOTIFY_SOCKET: '' } },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      await waitFor(() => readings('door-1').length >= 1, 15_000, `the initial door reading (${stderr})`);
      assert.equal(readings('door-1')[0]!.value, false);
      // onoff configured the line the profile resolved: input, both edges, active_low reset.
      assert.equal(readFileSync(sysfs.file(17, 'direction'), 'utf8').trim(), 'in');

      sysfs.setValue(17, 1);
      await waitFor(() => readings('door-1').some((r) => r.value === true), 10_000, 'door open');
      sysfs.setValue(17, 0);
      await waitFor(() => readings('door-1').at(-1)?.value === false, 10_000, 'door closed');

      // The fake sysfs is polled: each level is held until the daemon has read it, or a stalled
      // daemon (a loaded machine) would miss an edge no real GPIO interrupt would.
      for (let i = 0; i < 3; i++) {
        for (const level of [1, 0] as const) {
          sysfs.setValue(27, level);
          await waitFor(
            () => sysfs.readSinceWritten(27),
            10_000,
            `the daemon read level ${level} (pulse ${i + 1})`,
          );
        }
      }
      const counted = () => readings('water-pulses').reduce((a, r) => a + Number(r.value), 0);
      await waitFor(() => counted() >= 3, 10_000, 'three pulses counted');
      // A 300 ms report stamped well after the last pulse arrived: no edge is still to be counted.
      const lastPulse = Date.now();
      await waitFor(
        () => readings('water-pulses').some((r) => r.ts > lastPulse + 300),
        10_000,
        'a pulse report after the pulses',
      );
      assert.equal(counted(), 3, 'each rising edge counted exactly once');
      assert.ok(messages.flatMap(decodeWire).every((r) => r.quality === 'good'));
    } finally {
      child.kill('SIGTERM');
      const code = await exited;
      await unsubscribe();
      assert.equal(code, 0, stderr);
    }
  });
});
