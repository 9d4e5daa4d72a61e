// GPIO through the real onoff code path, on a fake sysfs tree seen at /sys/class/gpio inside a
// private mount namespace (test/helpers/gpio-sysfs.ts). Needs root and unshare(1): where they are
// missing the tests fail and say so, rather than skipping silently.

import assert from 'node:assert/strict';
import {
  makeFakeSysfs,
  namespaceProblem,
  readTrim,
  startGpioChild,
  type ChildEvent,
  type FakeSysfs,
  type GpioChild,
} from '../helpers/gpio-sysfs.js';

const readings = (events: ChildEvent[], sensor: string) =>
  events.filter((e) => e.type === 'reading' && e.sensor === sensor);
const values = (events: ChildEvent[], sensor: string) => readings(events, sensor).map((e) => e.value);
const sum = (events: ChildEvent[], sensor: string) =>
  readings(events, sensor).reduce((a, e) => a + (e.value as number), 0);

const level = (id: string, pin: number, gpio: Record<string, unknown> = {}) => ({
  id,
  gpio: { pin, edge: 'both', debounce: 0, activeLow: false, mode: 'level', ...gpio },
});

describe('GPIO on a fake sysfs tree through onoff (mount namespace)', function () {
  this.timeout(20_000);
  let fs: FakeSysfs | undefined;
  let child: GpioChild | undefined;

  before(() => {
    const why = namespaceProblem();
    if (why !== null) throw new Error(`cannot run the fake-sysfs GPIO tests here: ${why}`);
  });

  afterEach(() => {
    child?.kill();
    fs?.cleanup();
    child = undefined;
    fs = undefined;
  });

  it('reads edges, debounce, activeLow and counters from the value files', async () => {
    fs = makeFakeSysfs({ pins: { 17: 0, 18: 0, 19: 0, 20: 0 } });
    const f = fs;
    child = startGpioChild(f, {
      action: 'run',
      pollMs: 2,
      sensors: [
        level('door', 17),
        level('button', 18, { activeLow: true }),
        level('bouncy', 19, { debounce: 250 }),
        {
          id: 'meter',
          gpio: { pin: 20, edge: 'both', debounce: 0, activeLow: false, mode: 'counter' },
          every: 50,
        },
        {
          id: 'rises',
          gpio: { pin: 20, edge: 'rising', debounce: 0, activeLow: false, mode: 'counter' },
          every: 50,
        },
      ],
    });
    const c = child;
    await c.waitFor((e) => e.some((x) => x.type === 'started'), 'start');

    // onoff configured the pins through the sysfs files.
    assert.equal(readTrim(f.file(17, 'direction')), 'in');
    assert.equal(readTrim(f.file(17, 'edge')), 'both');
    assert.equal(readTrim(f.file(18, 'active_low')), '0', 'activeLow is applied in software');
    assert.match(c.stderr(), /polling its value instead/);

    // Initial levels.
    assert.deepEqual(values(c.events, 'door'), [false]);
    assert.deepEqual(values(c.events, 'button'), [true]);

    // Edges on a level input.
    f.setValue(17, 1);
    await c.waitFor((e) => values(e, 'door').length === 2, 'door rising');
    f.setValue(17, 0);
    await c.waitFor((e) => values(e, 'door').length === 3, 'door falling');
    assert.deepEqual(values(c.events, 'door'), [false, true, false]);

    // activeLow: a high wire is false.
    f.setValue(18, 1);
    await c.waitFor((e) => values(e, 'button').length === 2, 'button released');
    assert.deepEqual(values(c.events, 'button'), [true, false]);

    // Debounce: a glitch far shorter than 250 ms is ignored; a held level is accepted.
    f.setValue(19, 1);
    f.setValue(19, 0);
    const glitchAt = Date.now();
    // The child's own clock passed the 250 ms window: a 50 ms meter report stamped after it came.
    await c.waitFor(
      (e) => readings(e, 'meter').some((r) => (r.ts as number) > glitchAt + 300),
      'a meter report after the debounce window',
    );
    assert.deepEqual(values(c.events, 'bouncy'), [false]);
    f.setValue(19, 1);
    await c.waitFor((e) => values(e, 'bouncy').length === 2, 'bouncy held high');
    assert.deepEqual(values(c.events, 'bouncy'), [false, true]);

    // Counter: each transition is seen (we wait for it) before the next one is made.
    for (let i = 1; i <= 3; i++) {
      f.setValue(20, 1);
      await c.waitFor((e) => sum(e, 'meter') >= 2 * i - 1, `meter edge ${2 * i - 1}`);
      f.setValue(20, 0);
      await c.waitFor((e) => sum(e, 'meter') >= 2 * i, `meter edge ${2 * i}`);
    }
    await c.waitFor((e) => sum(e, 'rises') >= 3, 'three rising edges');
    const reports = readings(c.events, 'meter').length;
    await c.waitFor((e) => readings(e, 'meter').length >= reports + 3, 'a few more 50 ms reports'); // no late extra edge
    assert.equal(sum(c.events, 'meter'), 6);
    assert.equal(sum(c.events, 'rises'), 3);
    assert.ok(readings(c.events, 'meter').every((r) => typeof r.value === 'number' && r.quality === 'good'));
    assert.ok(values(c.events, 'meter').includes(0), 'intervals without pulses report 0');
    assert.deepEqual(
      c.events.filter((e) => e.type === 'error'),
      [],
    );

    assert.equal(await c.stop(), 0);
    assert.ok(c.events.some((e) => e.type === 'stopped'));
    assert.match(readTrim(f.rootFile('unexport')), /^(17|18|19|20)$/, 'pins were unexported at stop');
  });

  it('commissioning reads go through onoff too', async () => {
    fs = makeFakeSysfs({ pins: { 5: 1, 6: 1 } });
    child = startGpioChild(fs, {
      action: 'readOnce',
      sensors: [level('a', 5), level('b', 6, { activeLow: true })],
    });
    assert.equal(await child.exit, 0, child.stderr());
    const out = child.events.find((e) => e.type === 'readOnce');
    const rows = out?.rows as { id: string; value: unknown; where: string; quality: string }[];
    assert.deepEqual(
      rows.map((r) => [r.id, r.value, r.where, r.quality]),
      [
        ['a', true, 'sysfs GPIO 5', 'good'],
        ['b', false, 'sysfs GPIO 6', 'good'],
      ],
    );
  });

  it('fails to start with a clear error where there is no sysfs GPIO', async () => {
    fs = makeFakeSysfs({ noGpio: true });
    child = startGpioChild(fs, { action: 'run', sensors: [level('door-1', 17)] });
    assert.equal(await child.exit, 0, child.stderr());
    const e = child.events.find((x) => x.type === 'startError');
    assert.equal(e?.code, 'EDGEGW_E_GPIO');
    assert.equal(
      e?.message,
      'sensor door-1: sysfs GPIO 17: /sys/class/gpio does not exist: not a Linux GPIO board or sysfs GPIO disabled',
    );
  });

  it('fails to start with a clear error when the export file is not writable', async () => {
    fs = makeFakeSysfs({ exportMode: 0o444 }); // gpio17 not exported yet: onoff must write `export`
    child = startGpioChild(fs, { action: 'run', dropPrivileges: true, sensors: [level('door-1', 17)] });
    assert.equal(await child.exit, 0, child.stderr());
    const e = child.events.find((x) => x.type === 'startError');
    assert.equal(e?.code, 'EDGEGW_E_GPIO');
    assert.equal(
      e?.message,
      'sensor door-1: sysfs GPIO 17: permission denied: add the edgegw user to the gpio group (EACCES)',
    );
  });
});
