// A set of seqs kept as sorted, disjoint, non-adjacent inclusive ranges: a consumer that has
// everything holds one range, so the state grows with the holes, never with the stream. Each range
// remembers when the hole just below it was first noticed (the gap report's age).

export interface Span {
  from: number;
  to: number;
  /** When the hole below this span was first noticed (ms since the epoch); null for the lowest span. */
  gapSince: number | null;
}

/** Index of the span holding `seq`, or -1. */
export function findSpan(spans: readonly Span[], seq: number): number {
  let lo = 0;
  let hi = spans.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = spans[mid]!;
    if (seq < s.from) hi = mid - 1;
    else if (seq > s.to) lo = mid + 1;
    else return mid;
  }
  return -1;
}

export function hasSeq(spans: readonly Span[], seq: number): boolean {
  return findSpan(spans, seq) >= 0;
}

/** Adds `from..to`, merging what it touches; a hole it opens is dated `now`. */
export function addRange(spans: Span[], from: number, to: number, now: number): void {
  // First span that ends at or after from-1 (touching or overlapping or above).
  let a = 0;
  while (a < spans.length && spans[a]!.to < from - 1) a++;
  let b = a;
  while (b < spans.length && spans[b]!.from <= to + 1) b++;
  if (a === b) {
    // Touches nothing: a new span at `a`. Below it lies part of an older hole, or a new one.
    const next = spans[a];
    let gapSince: number | null;
    if (a === 0) gapSince = null;
    else if (next === undefined) gapSince = now;
    else gapSince = next.gapSince;
    if (a === 0 && next !== undefined) next.gapSince = now;
    spans.splice(a, 0, { from, to, gapSince });
    return;
  }
  const first = spans[a]!;
  const last = spans[b - 1]!;
  const merged: Span = {
    from: Math.min(from, first.from),
    to: Math.max(to, last.to),
    gapSince: first.gapSince,
  };
  spans.splice(a, b - a, merged);
}

/** The seqs of `from..to` that the set holds, as ranges. */
export function intersect(spans: readonly Span[], from: number, to: number): [number, number][] {
  const out: [number, number][] = [];
  for (const s of spans) {
    if (s.to < from) continue;
    if (s.from > to) break;
    out.push([Math.max(s.from, from), Math.min(s.to, to)]);
  }
  return out;
}

/** The holes between spans, lowest first. */
export function holes(spans: readonly Span[]): { from: number; to: number; since: number }[] {
  const out: { from: number; to: number; since: number }[] = [];
  for (let i = 1; i < spans.length; i++) {
    const s = spans[i]!;
    out.push({ from: spans[i - 1]!.to + 1, to: s.from - 1, since: s.gapSince ?? 0 });
  }
  return out;
}

export function countSeqs(ranges: readonly (readonly [number, number])[]): number {
  let n = 0;
  for (const [f, t] of ranges) n += t - f + 1;
  return n;
}
