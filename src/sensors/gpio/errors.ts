// Why a GPIO pin cannot be used, in words a technician can act on. Each message names the sensor,
// the pin and its sysfs number.

import { EdgegwError, Exit } from '../../errors.js';

export interface PinLabel {
  readonly sensor: string;
  readonly pin: string | number;
  readonly gpio: number;
}

export function pinWhere(p: Pick<PinLabel, 'pin' | 'gpio'>): string {
  return typeof p.pin === 'number' ? `sysfs GPIO ${p.gpio}` : `${p.pin} (sysfs ${p.gpio})`;
}

/** The likely cause behind an errno from the sysfs GPIO interface. */
export function gpioCause(code: string | undefined): string {
  switch (code ?? '') {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied: add the edgegw user to the gpio group';
    case 'EBUSY':
      return 'pin in use by another driver or process';
    case 'EINVAL':
      return 'no such GPIO number on this board (check gateway.profile)';
    case 'ENOENT':
      return (
        'the GPIO did not appear after export: no such GPIO number on this board, or sysfs GPIO ' +
        'disabled (check gateway.profile)'
      );
    default:
      return 'sysfs GPIO refused the pin';
  }
}

export function gpioOpenError(p: PinLabel, err: unknown): EdgegwError {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const what = code === undefined ? '' : ` (${code})`;
  return new EdgegwError(
    'EDGEGW_E_GPIO',
    `sensor ${p.sensor}: ${pinWhere(p)}: ${gpioCause(code)}${what}`,
    Exit.UNAVAILABLE,
    {
      cause: err,
    },
  );
}

export function gpioMissingError(p: PinLabel, sysfsRoot: string): EdgegwError {
  return new EdgegwError(
    'EDGEGW_E_GPIO',
    `sensor ${p.sensor}: ${pinWhere(p)}: ${sysfsRoot} does not exist: not a Linux GPIO board or sysfs GPIO disabled`,
    Exit.UNAVAILABLE,
  );
}
