// Modbus acquisition (RTU and TCP): one SensorGroup per bus that has sensors.

import { EdgegwError, Exit } from '../../errors.js';
import { isModbusSensor, type ModbusSensorConfig } from '../../config/schema.js';
import type { SensorContext, SensorGroup } from '../types.js';
import { DEFAULT_TUNING, type BusTuning } from './bus.js';
import { ModbusBusGroup } from './group.js';

export { DEFAULT_TUNING, type BusTuning } from './bus.js';
export { decodeRegisters, encodeValue, registerCount, type Layout, type Order } from './decode.js';
export { planReads, type ReadBlock } from './plan.js';

export interface ModbusOptions {
  /** Unit backoff and reconnect pacing; the defaults suit a plant, tests shorten them. */
  readonly tuning?: Partial<BusTuning>;
}

export function createModbusGroups(ctx: SensorContext, opts: ModbusOptions = {}): SensorGroup[] {
  const tuning: BusTuning = { ...DEFAULT_TUNING, ...opts.tuning };
  const byBus = new Map<string, ModbusSensorConfig[]>();
  for (const s of ctx.site.sensors) {
    if (!isModbusSensor(s)) continue;
    const list = byBus.get(s.bus) ?? [];
    list.push(s);
    byBus.set(s.bus, list);
  }
  const groups: SensorGroup[] = [];
  for (const [name, sensors] of byBus) {
    const bus = ctx.site.buses[name];
    // The config loader refuses unknown buses; this only guards hand-built configs.
    if (bus === undefined) {
      const id = sensors[0]?.id ?? '?';
      throw new EdgegwError('EDGEGW_E_CONFIG', `sensor ${id} names unknown bus ${name}`, Exit.CONFIG);
    }
    groups.push(new ModbusBusGroup(ctx, name, bus, sensors, tuning));
  }
  return groups;
}
