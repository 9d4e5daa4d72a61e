// Seams between the acquisition layer and its drivers (modbus, gpio, sim).

import type { Logger } from 'pino';
import type { Clock, Lifecycle, Progress, Quality, SensorObserver } from '../types.js';
import type { SiteConfig } from '../config/schema.js';
import type { BoardProfile } from '../config/profile.js';

/** One commissioning read of one sensor (`edgegw sensors read`). */
export interface CommissionResult {
  id: string;
  /** Where it lives, for the technician: `rs485-1 unit 3 input 0`, `GPIO17 (sysfs 529)`, `sim sine`. */
  where: string;
  /** Raw register words or bits as read, when the driver has them. */
  raw?: number[];
  value: number | boolean | null;
  unit?: string;
  quality: Quality;
  ts: number;
  /** Why the read failed; never contains a reading value. */
  error?: string;
}

/** A driver instance covering some sensors (one bus, one pin, one sim). */
export interface SensorGroup extends Lifecycle {
  readonly sensorIds: readonly string[];
  /** Read every sensor of this group once, now (no schedule). Works without start(). */
  readOnce(): Promise<CommissionResult[]>;
  /** Each running grid's progress, for the watchdog; empty when stopped or event-driven only. */
  progress(): Progress[];
}

/** Everything a driver gets from the composition root. */
export interface SensorContext {
  readonly site: SiteConfig;
  readonly profile: BoardProfile | null;
  readonly observer: SensorObserver;
  readonly clock: Clock;
  readonly log: Logger;
}
