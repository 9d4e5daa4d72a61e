// The sensor stage as the daemon and the CLI see it: every driver's groups behind one list.

import type { CommissionResult, SensorContext, SensorGroup } from './types.js';
import { createModbusGroups } from './modbus/index.js';
import { createGpioGroups } from './gpio/index.js';
import { createSimGroups } from './sim.js';

export function createSensorGroups(ctx: SensorContext): SensorGroup[] {
  return [...createModbusGroups(ctx), ...createGpioGroups(ctx), ...createSimGroups(ctx)];
}

/**
 * Reads the named sensors (all when `ids` is empty) once, in configuration order, without the
 * daemon: the commissioning read. Unknown ids throw before any hardware is touched.
 */
export async function readSensorsOnce(
  ctx: SensorContext,
  ids: readonly string[],
): Promise<CommissionResult[]> {
  const known = new Set(ctx.site.sensors.map((s) => s.id));
  const unknown = ids.filter((id) => !known.has(id));
  if (unknown.length > 0) {
    throw new Error(`unknown sensor id(s): ${unknown.join(', ')}; configured: ${[...known].join(', ')}`);
  }
  const wanted = new Set(ids.length > 0 ? ids : known);
  const groups = createSensorGroups(ctx).filter((g) => g.sensorIds.some((id) => wanted.has(id)));
  const rows = (await Promise.all(groups.map((g) => g.readOnce()))).flat();
  const order = new Map(ctx.site.sensors.map((s, i) => [s.id, i]));
  return rows.filter((r) => wanted.has(r.id)).sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
}
