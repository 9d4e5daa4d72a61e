import type { DataTypeName } from './schema.js';

/** How many registers (or bits, for bool) a value of each Modbus data type occupies. */
export const REGISTER_WIDTH: Readonly<Record<DataTypeName, number>> = {
  bool: 1,
  int16: 1,
  uint16: 1,
  int32: 2,
  uint32: 2,
  float32: 2,
  int64: 4,
  uint64: 4,
  float64: 4,
};
