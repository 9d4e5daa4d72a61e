// Modbus test helpers: a SensorContext holding buses and Modbus sensors, sensor and bus builders,
// and a wait-for-condition with a deadline (no tight timing in tests).

import { pino, type Logger } from 'pino';
import type { BusConfig, ModbusSensorConfig, SiteConfig } from '../../src/config/schema.js';
import type { SensorContext } from '../../src/sensors/types.js';
import { systemClock, type Clock } from '../../src/types.js';
import { RecordingObserver } from './gpio-sensor-context.js';

export { RecordingObserver, captureLog } from './gpio-sensor-context.js';

export function tcpBus(port: number, over: Partial<BusConfig> = {}): BusConfig {
  return {
    tcp: { host: '127.0.0.1', port },
    timeout: 200,
    retries: 1,
    interFrameDelay: 0,
    maxGap: 8,
    ...over,
  };
}

export function rtuBus(path: string, over: Partial<BusConfig> = {}): BusConfig {
  return {
    rtu: { port: path, baudRate: 115200, parity: 'none', dataBits: 8, stopBits: 1 },
    timeout: 200,
    retries: 1,
    interFrameDelay: 2,
    maxGap: 8,
    ...over,
  };
}

export function modbusSensor(
  id: string,
  bus: string,
  over: Partial<ModbusSensorConfig> & Pick<ModbusSensorConfig, 'address'>,
): ModbusSensorConfig {
  return {
    id,
    bus,
    unitId: 1,
    table: 'holding',
    wordOrder: 'big',
    byteOrder: 'big',
    scale: 1,
    offset: 0,
    every: 100,
    ...over,
  };
}

export function modbusContext(
  buses: Record<string, BusConfig>,
  sensors: ModbusSensorConfig[],
  opts: { clock?: Clock; log?: Logger } = {},
): { ctx: SensorContext; obs: RecordingObserver } {
  const obs = new RecordingObserver();
  const site = { gateway: { id: 'test-gw' }, buses, sensors } as unknown as SiteConfig;
  const ctx: SensorContext = {
    site,
    profile: null,
    observer: obs,
    clock: opts.clock ?? systemClock,
    log: opts.log ?? pino({ level: 'silent' }),
  };
  return { ctx, obs };
}

/** Polls `cond` every 20 ms until it holds; fails with `what` after `ms`. */
export async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
