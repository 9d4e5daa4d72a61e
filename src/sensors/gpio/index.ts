// GPIO input sensors on sysfs (onoff): one group per sensor. See group.ts for the modes and
// pin-port.ts for the driver seam.

import { isGpioSensor } from '../../config/schema.js';
import type { SensorContext, SensorGroup } from '../types.js';
import { onoffPinPort, type PinPortFactory } from './pin-port.js';
import { resolvePin } from '../../config/profile.js';
import { GpioGroup, type ResolvePin } from './group.js';

export type { Bit, PinPort, PinPortFactory, PinPortSpec } from './pin-port.js';
export { onoffPinPort } from './pin-port.js';
export { DEFAULT_COUNTER_EVERY_MS, type ResolvePin } from './group.js';
export { DebouncedInput, type EdgeKind } from './debounce.js';
export { gpioCause } from './errors.js';

/** Where sysfs GPIO lives; onoff itself always uses this path. */
export const SYSFS_GPIO_ROOT = '/sys/class/gpio';

export interface GpioOptions {
  /** Checked before opening a pin (default /sys/class/gpio); also passed to resolvePin. */
  sysfsRoot?: string;
  /** How pins are opened (default: onoff). */
  pinPort?: PinPortFactory;
  /** Pin name → sysfs number (default: resolvePin of src/config/profile.ts). */
  resolvePin?: ResolvePin;
  /** Polling period where interrupts are unavailable (default 10 ms). */
  pollMs?: number;
}

export function createGpioGroups(ctx: SensorContext, opts: GpioOptions = {}): SensorGroup[] {
  const deps = {
    sysfsRoot: opts.sysfsRoot ?? SYSFS_GPIO_ROOT,
    pinPort: opts.pinPort ?? onoffPinPort,
    resolvePin: opts.resolvePin ?? resolvePin,
    pollMs: opts.pollMs ?? 10,
  };
  return ctx.site.sensors.filter(isGpioSensor).map((s) => new GpioGroup(ctx, s, deps));
}
