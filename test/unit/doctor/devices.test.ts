// Serial ports and GPIO as doctor sees them, on real paths: a character device that is there
// (/dev/null stands in for a tty), one that is not, and a sysfs GPIO tree without `export`.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SiteConfig } from '../../../src/config/schema.js';
import { checkGpio, checkSerialPorts } from '../../../src/doctor/devices.js';

function site(ports: Record<string, string>, gpioPins: number[] = []): SiteConfig {
  return {
    buses: Object.fromEntries(Object.entries(ports).map(([bus, port]) => [bus, { rtu: { port } }])),
    sensors: gpioPins.map((pin, i) => ({ id: `door-${i}`, gpio: { pin } })),
  } as unknown as SiteConfig;
}

describe('doctor device checks', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgegw-doctor-dev-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('serial: a present character device passes, a missing port fails with what to do', async () => {
    const lines = await checkSerialPorts(site({ ok: '/dev/null', gone: '/dev/ttyUSB-edgegw-none' }));
    assert.deepEqual(
      lines.map((l) => [l.check, l.result]),
      [
        ['serial ok', 'PASS'],
        ['serial gone', 'FAIL'],
      ],
    );
    assert.match(lines[1]!.found, /ENOENT/);
    assert.match(lines[1]!.fix, /\/dev\/serial\/by-id/);
  });

  it('serial: a regular file is no serial port', async () => {
    const file = join(dir, 'not-a-tty');
    await writeFile(file, '');
    const [l] = await checkSerialPorts(site({ bus: file }));
    assert.equal(l?.result, 'FAIL');
    assert.match(l?.found ?? '', /not a character device/);
  });

  it('gpio: no sysfs tree fails; a tree whose export is writable passes; an exported pin is checked', async () => {
    const none = await checkGpio(site({}, [17]), null, join(dir, 'no-gpio'));
    assert.equal(none[0]?.result, 'FAIL');
    const root = join(dir, 'gpio');
    await mkdir(join(root, 'gpio17'), { recursive: true });
    await writeFile(join(root, 'export'), '');
    await writeFile(join(root, 'gpio17', 'value'), '0');
    const ok = await checkGpio(site({}, [17]), null, root);
    assert.deepEqual(
      ok.map((l) => [l.check, l.result]),
      [
        ['gpio', 'PASS'],
        ['gpio door-0', 'PASS'],
      ],
    );
    assert.equal((await checkGpio(site({}), null, root))[0]?.found, 'no GPIO sensors configured');
  });
});
