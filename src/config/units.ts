// Durations (`250ms`, `1s`, `2m`, `1h`) and sizes (`512KiB`, `256MiB`) as users write them.

export const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$';
export const SIZE_PATTERN = '^[0-9]+(B|KiB|MiB|GiB)$';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** Milliseconds for a duration string; throws on anything else. */
export function parseDuration(text: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/.exec(text);
  const unit = m?.[2] === undefined ? undefined : DURATION_UNITS[m[2]];
  if (m?.[1] === undefined || unit === undefined) {
    throw new Error(`"${text}" is not a duration; write e.g. 250ms, 1s, 2m or 1h`);
  }
  return Math.round(Number(m[1]) * unit);
}

/** Bytes for a size string; throws on anything else. */
export function parseSize(text: string): number {
  const m = /^([0-9]+)(B|KiB|MiB|GiB)$/.exec(text);
  const unit = m?.[2] === undefined ? undefined : SIZE_UNITS[m[2]];
  if (m?.[1] === undefined || unit === undefined) {
    throw new Error(`"${text}" is not a size; write e.g. 512KiB or 256MiB`);
  }
  return Number(m[1]) * unit;
}

/** The shortest exact string for a number of milliseconds (inverse of parseDuration). */
export function formatDuration(ms: number): string {
  for (const [unit, factor] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= factor && ms % factor === 0) return `${ms / factor}${unit}`;
  }
  return `${ms}ms`;
}

/** The shortest exact string for a number of bytes (inverse of parseSize). */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes}B`;
}

/** The allowed [min, max] of a duration or size, as written in the config (`['10ms', '24h']`). */
export type Range = readonly [min: string, max: string];

/** The `range` keyword of a duration or size schema (schema.ts), if it has one. */
export function rangeOf(schema: object): Range | undefined {
  const r = (schema as { range?: unknown }).range;
  return Array.isArray(r) && r.length === 2 ? (r as unknown as Range) : undefined;
}
