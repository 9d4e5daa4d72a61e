// Board profiles and pin resolution against a fake sysfs GPIO tree.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_PROFILES_DIR } from '../../../src/config/load.js';
import { listProfiles, loadProfile, readChipBases, resolvePin } from '../../../src/config/profile.js';
import { EdgegwError } from '../../../src/errors.js';

describe('board profiles', () => {
  let tmp: string;
  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'edgegw-sysfs-'));
  });
  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  /** A fake /sys/class/gpio with gpiochipN/{label,base}. */
  async function sysfs(chips: [string, string, number][]): Promise<string> {
    const root = join(tmp, 'gpio');
    await mkdir(root, { recursive: true });
    for (const [dir, label, base] of chips) {
      await mkdir(join(root, dir));
      await writeFile(join(root, dir, 'label'), `${label}\n`);
      await writeFile(join(root, dir, 'base'), `${base}\n`);
    }
    return root;
  }

  it('ships the four profiles, each loading cleanly', async () => {
    const names = await listProfiles(DEFAULT_PROFILES_DIR);
    assert.deepEqual(names, [
      'beaglebone-black',
      'generic-x86-usb-rs485',
      'raspberry-pi-4',
      'raspberry-pi-5',
    ]);
    for (const n of names) {
      const p = await loadProfile(n, DEFAULT_PROFILES_DIR);
      assert.equal(p.name, n);
      assert.ok(p.description.length > 10);
      assert.ok(Object.isFrozen(p.gpio));
    }
    const x86 = await loadProfile('generic-x86-usb-rs485', DEFAULT_PROFILES_DIR);
    assert.deepEqual(x86.gpio, {});
    assert.equal(x86.serial['usb-rs485-0'], '/dev/ttyUSB0');
    const bbb = await loadProfile('beaglebone-black', DEFAULT_PROFILES_DIR);
    assert.equal(Object.keys(bbb.chips).length, 4);
    assert.deepEqual(bbb.gpio.P9_12, { chip: 'gpio1', line: 28 });
    assert.deepEqual(bbb.gpio.gpio1_28, { chip: 'gpio1', line: 28 });
    assert.deepEqual(bbb.gpio.P8_07, { chip: 'gpio2', line: 2 });
  });

  it('Raspberry Pi 4: GPIO17 is 17 on old kernels and 529 on 6.6+ (base 512)', async () => {
    const pi4 = await loadProfile('raspberry-pi-4', DEFAULT_PROFILES_DIR);
    const old = await sysfs([
      ['gpiochip0', 'pinctrl-bcm2711', 0],
      ['gpiochip504', 'raspberrypi-exp-gpio', 504],
    ]);
    assert.equal(resolvePin(pi4, 'GPIO17', old), 17);
    await rm(old, { recursive: true });
    const v66 = await sysfs([
      ['gpiochip512', 'pinctrl-bcm2711', 512],
      ['gpiochip570', 'raspberrypi-exp-gpio', 570],
    ]);
    assert.equal(resolvePin(pi4, 'GPIO17', v66), 529);
  });

  it('Raspberry Pi 5: the RP1 chip base is found among several chips', async () => {
    const pi5 = await loadProfile('raspberry-pi-5', DEFAULT_PROFILES_DIR);
    const root = await sysfs([
      ['gpiochip512', 'gpio-brcmstb@107d508500', 512],
      ['gpiochip544', 'gpio-brcmstb@107d508520', 544],
      ['gpiochip571', 'pinctrl-rp1', 571],
    ]);
    assert.deepEqual(readChipBases(root).get('pinctrl-rp1'), 571);
    assert.equal(resolvePin(pi5, 'GPIO17', root), 588);
  });

  it('BeagleBone Black: each controller has its own base, under either label scheme', async () => {
    const bbb = await loadProfile('beaglebone-black', DEFAULT_PROFILES_DIR);
    const ti = await sysfs([
      ['gpiochip0', 'gpio-0-31', 0],
      ['gpiochip32', 'gpio-32-63', 32],
      ['gpiochip64', 'gpio-64-95', 64],
      ['gpiochip96', 'gpio-96-127', 96],
    ]);
    assert.equal(resolvePin(bbb, 'P9_12', ti), 60);
    assert.equal(resolvePin(bbb, 'P8_07', ti), 66);
    await rm(ti, { recursive: true });
    const mainline = await sysfs([
      ['gpiochip512', '44e07000.gpio', 512],
      ['gpiochip544', '4804c000.gpio', 544],
      ['gpiochip576', '481ac000.gpio', 576],
      ['gpiochip608', '481ae000.gpio', 608],
    ]);
    assert.equal(resolvePin(bbb, 'gpio1_28', mainline), 544 + 28);
    assert.equal(resolvePin(bbb, 'P9_25', mainline), 608 + 21);
  });

  it('falls back to the documented default base without sysfs, and passes numbers through', async () => {
    const pi4 = await loadProfile('raspberry-pi-4', DEFAULT_PROFILES_DIR);
    const none = join(tmp, 'no-such-sysfs');
    assert.equal(resolvePin(pi4, 'GPIO4', none), 516);
    assert.equal(resolvePin(pi4, 529, none), 529);
    assert.equal(resolvePin(null, '23', none), 23);
    assert.equal(resolvePin(null, 23, none), 23);
  });

  it('unknown pin names and names without a profile are EDGEGW_E_GPIO', async () => {
    const pi4 = await loadProfile('raspberry-pi-4', DEFAULT_PROFILES_DIR);
    assert.throws(
      () => resolvePin(pi4, 'GPI017', tmp),
      (e: unknown) =>
        e instanceof EdgegwError && e.code === 'EDGEGW_E_GPIO' && /did you mean `GPIO17`/.test(e.message),
    );
    assert.throws(
      () => resolvePin(null, 'GPIO17', tmp),
      (e: unknown) => e instanceof EdgegwError && /no board profile/.test(e.message),
    );
  });

  it('rejects a profile whose pins name an unknown chip or a line past the chip', async () => {
    const dir = join(tmp, 'profiles');
    await mkdir(dir);
    await writeFile(
      join(dir, 'bad.yaml'),
      'description: bad\nchips: { c: { labels: [x], defaultBase: 0, lines: 4 } }\npins: { A: { chip: d, line: 1 } }\n',
    );
    await writeFile(
      join(dir, 'far.yaml'),
      'description: far\nchips: { c: { labels: [x], defaultBase: 0, lines: 4 } }\npins: { A: { chip: c, line: 4 } }\n',
    );
    await writeFile(join(dir, 'typo.yaml'), 'description: typo\nchipz: {}\n');
    await assert.rejects(loadProfile('bad', dir), /unknown chip "d"/);
    await assert.rejects(loadProfile('far', dir), /line 4 is past chip c/);
    await assert.rejects(loadProfile('typo', dir), /chipz/);
    await assert.rejects(loadProfile('../etc/passwd', dir), /not a profile name/);
    assert.deepEqual(await listProfiles(dir), ['bad', 'far', 'typo']);
  });
});
