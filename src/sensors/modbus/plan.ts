// The coalescing planner: sensors of one bus → the fewest read requests. Sensors on the same unit
// and table whose addresses lie within `maxGap` of each other share one request, as long as it
// stays within the protocol limits (125 registers, 2000 bits per read). Pure: no I/O, no clock.

import type { DataTypeName, ModbusSensorConfig, TableName } from '../../config/schema.js';
import { registerCount } from './decode.js';

/** Protocol limits per read request (Modbus application protocol v1.1b3, FC 1–4). */
export const MAX_READ_REGISTERS = 125;
export const MAX_READ_BITS = 2000;

export interface PlanOptions {
  /** Largest run of unwanted addresses bridged inside one request (bus.maxGap). */
  readonly maxGap: number;
  readonly maxRegisters?: number;
  readonly maxBits?: number;
}

/** One read request and the sensors it serves. */
export interface ReadBlock {
  readonly unitId: number;
  readonly table: TableName;
  readonly start: number;
  /** Registers (holding, input) or bits (coil, discrete). */
  readonly count: number;
  /** Sorted by address. */
  readonly sensors: readonly ModbusSensorConfig[];
}

export const isBitTable = (t: TableName): boolean => t === 'coil' || t === 'discrete';

/** The sensor's type, defaulted from its table as the config does (bool for bits, else uint16). */
export function sensorType(s: ModbusSensorConfig): DataTypeName {
  return s.type ?? (isBitTable(s.table) ? 'bool' : 'uint16');
}

/** Registers or bits the sensor occupies. */
export function sensorWidth(s: ModbusSensorConfig): number {
  return isBitTable(s.table) ? 1 : registerCount(sensorType(s));
}

const TABLE_ORDER: Record<TableName, number> = { coil: 0, discrete: 1, holding: 2, input: 3 };

export function planReads(sensors: readonly ModbusSensorConfig[], opts: PlanOptions): ReadBlock[] {
  const maxGap = Math.max(0, Math.floor(opts.maxGap));
  const sorted = [...sensors].sort(
    (a, b) =>
      a.unitId - b.unitId ||
      TABLE_ORDER[a.table] - TABLE_ORDER[b.table] ||
      a.address - b.address ||
      sensorWidth(a) - sensorWidth(b),
  );
  const blocks: ReadBlock[] = [];
  let cur: {
    unitId: number;
    table: TableName;
    start: number;
    end: number;
    sensors: ModbusSensorConfig[];
  } | null = null;
  for (const s of sorted) {
    const limit = isBitTable(s.table)
      ? (opts.maxBits ?? MAX_READ_BITS)
      : (opts.maxRegisters ?? MAX_READ_REGISTERS);
    const end = s.address + sensorWidth(s);
    const fits =
      cur !== null &&
      cur.unitId === s.unitId &&
      cur.table === s.table &&
      s.address - cur.end <= maxGap &&
      Math.max(cur.end, end) - cur.start <= limit;
    if (cur !== null && fits) {
      cur.end = Math.max(cur.end, end);
      cur.sensors.push(s);
      continue;
    }
    if (cur !== null) blocks.push(toBlock(cur));
    cur = { unitId: s.unitId, table: s.table, start: s.address, end, sensors: [s] };
  }
  if (cur !== null) blocks.push(toBlock(cur));
  return blocks;
}

function toBlock(c: {
  unitId: number;
  table: TableName;
  start: number;
  end: number;
  sensors: ModbusSensorConfig[];
}): ReadBlock {
  return { unitId: c.unitId, table: c.table, start: c.start, count: c.end - c.start, sensors: c.sensors };
}

/** `unit 1 holding 0..1` (or `… holding 2` for one address): where a range lives, for humans. */
export function describeRange(unitId: number, table: TableName, start: number, count: number): string {
  return `unit ${unitId} ${table} ${count > 1 ? `${start}..${start + count - 1}` : `${start}`}`;
}
