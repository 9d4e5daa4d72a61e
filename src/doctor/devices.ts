// Serial ports (from the buses, already resolved through the board profile by the loader) and
// GPIO (sysfs): present, and readable and writable by the user doctor runs as (run it as the
// service user: sudo -u edgegw edgegw doctor).

import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { resolvePin, type BoardProfile } from '../config/profile.js';
import { isGpioSensor, type SiteConfig } from '../config/schema.js';
import { SYSFS_GPIO_ROOT } from '../sensors/gpio/index.js';
import { errCode, fail, pass, type CheckLine } from './check.js';

/** The name of group `gid` from /etc/group, for the `usermod -aG` fix; the number if unknown. */
async function groupName(gid: number): Promise<string> {
  const text = await readFile('/etc/group', 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    if (name !== undefined && Number(id) === gid) return name;
  }
  return String(gid);
}

async function accessible(path: string): Promise<string | null> {
  try {
    await access(path, constants.R_OK | constants.W_OK);
    return null;
  } catch (err) {
    return errCode(err);
  }
}

export async function checkSerialPorts(site: SiteConfig): Promise<CheckLine[]> {
  const ports = Object.entries(site.buses).flatMap(([bus, b]) => (b.rtu ? [{ bus, port: b.rtu.port }] : []));
  if (ports.length === 0) return [pass('serial', 'no serial (rtu) buses configured')];
  return Promise.all(ports.map(({ bus, port }) => checkSerialPort(bus, port)));
}

async function checkSerialPort(bus: string, port: string): Promise<CheckLine> {
  const name = `serial ${bus}`;
  let st;
  try {
    st = await stat(port);
  } catch (err) {
    return fail(
      name,
      `buses.${bus}.rtu.port ${port}: ${errCode(err)}`,
      `plug in the adapter, or check the port (ls -l /dev/serial/by-id/) and gateway.profile`,
    );
  }
  if (!st.isCharacterDevice())
    return fail(name, `${port} is not a character device`, `set buses.${bus}.rtu.port`);
  const denied = await accessible(port);
  if (denied !== null) {
    const group = await groupName(st.gid);
    return fail(name, `${port} is not readable and writable (${denied})`, `usermod -aG ${group} edgegw`);
  }
  return pass(name, `${port} is present and accessible`);
}

export async function checkGpio(
  site: SiteConfig,
  profile: BoardProfile | null,
  root = SYSFS_GPIO_ROOT,
): Promise<CheckLine[]> {
  const pins = site.sensors.filter(isGpioSensor).map((s) => ({ id: s.id, pin: s.gpio.pin }));
  if (pins.length === 0) return [pass('gpio', 'no GPIO sensors configured')];
  try {
    await stat(root);
  } catch (err) {
    return [
      fail(
        'gpio',
        `${root}: ${errCode(err)}: no sysfs GPIO here`,
        'enable CONFIG_GPIO_SYSFS, or remove the gpio sensors',
      ),
    ];
  }
  const denied = await accessible(join(root, 'export'));
  if (denied !== null) {
    const group = await groupName((await stat(join(root, 'export')).catch(() => ({ gid: 0 }))).gid);
    return [fail('gpio', `${root}/export is not writable (${denied})`, `usermod -aG ${group} edgegw`)];
  }
  const lines: CheckLine[] = [pass('gpio', `${root} is accessible`)];
  for (const { id, pin } of pins) {
    const n = resolvePin(profile, pin, root);
    const dir = join(root, `gpio${n}`);
    // A pin not exported yet is exported by the daemon: only an exported one can be checked.
    const exported = await stat(dir).then(
      () => true,
      () => false,
    );
    if (!exported) continue;
    const no = await accessible(join(dir, 'value'));
    lines.push(
      no === null
        ? pass(`gpio ${id}`, `${dir}/value is accessible`)
        : fail(
            `gpio ${id}`,
            `${dir}/value is not readable and writable (${no})`,
            `chmod g+rw ${dir}/value (or a udev rule)`,
          ),
    );
  }
  return lines;
}
