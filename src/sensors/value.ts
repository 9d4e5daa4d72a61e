// Values leave the drivers already at the sensor's precision, so the wire format can print them
// with JavaScript's shortest round-trip formatting (DESIGN.md §3: 21.6, not 21.600000381469727).

/** The shortest decimal that reads back to the same float32 (e.g. 21.600000381469727 → 21.6). */
export function shortestFloat32(x: number): number {
  if (!Number.isFinite(x)) return x;
  const target = Math.fround(x);
  for (let p = 1; p <= 9; p++) {
    const candidate = Number(x.toPrecision(p));
    if (Math.fround(candidate) === target) return candidate;
  }
  return x;
}

/** Removes binary noise from arithmetic (0.1 * 3 → 0.3) by keeping 15 significant digits. */
export function cleanDouble(x: number): number {
  return Number.isFinite(x) && x !== 0 ? Number(x.toPrecision(15)) : x;
}

/**
 * The value a reading may carry, or null when it has none: NaN and ±Infinity cannot be written on
 * the wire (JSON, DESIGN.md §3) nor sealed, so a driver turns null into a `bad` reading of value 0
 * (BAD_VALUE) at its source, and one broken sensor never fails a commit for the others.
 */
export function encodable(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

/** What a `bad` reading without a value carries: 0 (false for a bit), never an old value. */
export const BAD_VALUE = 0;

export interface ValueTransform {
  readonly scale: number;
  readonly offset: number;
  readonly decimals?: number | undefined;
}

/**
 * value = raw * scale + offset, then rounded to `decimals` places when set. The result can be
 * ±Infinity (a float64 near its limit times a scale): pass it through `encodable`.
 */
export function scaleValue(raw: number, t: ValueTransform, rawIsFloat32 = false): number {
  const base = rawIsFloat32 ? shortestFloat32(raw) : raw;
  const scaled = t.scale === 1 && t.offset === 0 ? base : cleanDouble(base * t.scale + t.offset);
  return t.decimals === undefined ? scaled : roundTo(scaled, t.decimals);
}

/** Rounds half away from zero to `decimals` places, exactly as a person would write it. */
export function roundTo(x: number, decimals: number): number {
  if (!Number.isFinite(x)) return x;
  return Number(`${Math.sign(x) * Math.round(Number(`${Math.abs(x)}e${decimals}`))}e-${decimals}`);
}
