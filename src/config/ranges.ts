// Range checks for durations and sizes. The schema writes them as strings (`250ms`, `64KiB`), so JSON
// Schema's `minimum`/`maximum` cannot bound them; each carries a custom `range` keyword instead
// (schema.ts), checked here against the parsed value. A value outside its range would pass the
// pattern and break the daemon at run time (0ms spins, 720h overflows Node's 2^31 ms timers).

import type { TSchema } from '@sinclair/typebox';
import { DURATION_PATTERN, SIZE_PATTERN, parseDuration, parseSize, rangeOf } from './units.js';
import type { IssueList, KeyPath } from './issues.js';

const isObj = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** The parser for a schema node's unit, or undefined when it is neither a duration nor a size. */
function parserOf(schema: TSchema): ((text: string) => number) | undefined {
  if (schema.pattern === DURATION_PATTERN) return parseDuration;
  if (schema.pattern === SIZE_PATTERN) return parseSize;
  return undefined;
}

/** Reports every duration or size in `value` that lies outside its schema's `range`. */
export function checkRanges(schema: TSchema, value: unknown, path: KeyPath, issues: IssueList): void {
  const parse = parserOf(schema);
  const range = rangeOf(schema);
  if (parse && range && typeof value === 'string') {
    let n: number;
    try {
      n = parse(value);
    } catch {
      return; // not a duration or size at all: reported as a pattern error
    }
    const [lo, hi] = range;
    if (!(n >= parse(lo) && n <= parse(hi))) {
      issues.error(path, `${show(value)} is outside ${lo}..${hi}, the range this key allows`);
    }
    return;
  }
  if (!isObj(value)) return;
  const props = schema.properties as Record<string, TSchema> | undefined;
  if (props) {
    for (const [k, s] of Object.entries(props)) checkRanges(s, value[k], [...path, k], issues);
  }
  const pattern = schema.patternProperties as Record<string, TSchema> | undefined;
  const inner = pattern ? Object.values(pattern)[0] : undefined;
  if (inner) for (const [k, v] of Object.entries(value)) checkRanges(inner, v, [...path, k], issues);
}

/** A duration or size matched its pattern (digits and a unit), so quoting it is safe; a long one is not. */
function show(text: string): string {
  return text.length > 32 ? `a ${text.length}-character value` : `"${text}"`;
}
