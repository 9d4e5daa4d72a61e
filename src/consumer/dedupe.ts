// Dedupe by (gw, seq) with state bounded per gateway, and the gap report (docs/wire-format.md,
// "Consuming"). Per gateway the state is the settled seqs as ranges (received, or explained by a
// notice): one range when all is well, so the low end acts as the watermark and the ranges above it
// are the out-of-order seqs of live-first delivery. A notice's own seq counts as received; the range
// it explains counts as settled, so the gap report shows it as explained, not missing.

import type { DecodedMessage, GapWhy, Notice, Row } from './decode.js';
import { GAP_WHYS } from './decode.js';
import { addRange, countSeqs, findSpan, hasSeq, holes, intersect, type Span } from './spans.js';

export const STATE_VERSION = 1;

/** A range a notice explained, with the seqs of it that arrived anyway (e.g. dropped while in flight). */
export interface ExplainedRange {
  from: number;
  to: number;
  why: GapWhy;
  readings: number | null;
  noticeSeq: number;
  /** When the notice was made, by the gateway's clock (ms since the epoch). */
  noticeT0: number;
  received: [number, number][];
}

export interface WhyTotals {
  ranges: number;
  seqs: number;
  /** Readings the notices counted; null when any of them could not know. */
  readings: number | null;
}

export interface GatewayState {
  spans: Span[];
  explained: ExplainedRange[];
  totals: Record<GapWhy, WhyTotals>;
  /** Seqs of holes given up when the number of holes passed maxHoles (then counted here). */
  givenUpSeqs: number;
}

export interface DeduperState {
  version: typeof STATE_VERSION;
  gateways: Record<string, GatewayState>;
}

export interface DeduperOptions {
  /** Wall clock for the age of a hole (ms since the epoch). */
  now?: () => number;
  /** Holes kept per gateway; past it the oldest hole is given up (counted in givenUpSeqs). */
  maxHoles?: number;
  /** Explained ranges kept per gateway for the report and late arrivals; totals keep counting. */
  maxExplained?: number;
}

export interface Accepted {
  rows: Row[];
  notices: Notice[];
  /** Seqs of the message already seen (dropped here). */
  duplicates: number[];
}

export interface GapReport {
  gw: string;
  /** Lowest and highest seq settled so far; everything from `first` to `watermark` is settled. */
  first: number | null;
  watermark: number | null;
  highest: number | null;
  /** Ranges not received yet and not explained: "not yet delivered" (age since first noticed). */
  missing: { from: number; to: number; seqs: number; since: number; ageS: number }[];
  explained: {
    from: number;
    to: number;
    why: GapWhy;
    readings: number | null;
    noticeSeq: number;
    receivedSeqs: number;
  }[];
  totals: Record<GapWhy, WhyTotals>;
  givenUpSeqs: number;
}

const DEFAULT_MAX_HOLES = 10_000;
const DEFAULT_MAX_EXPLAINED = 1_000;

function emptyTotals(): Record<GapWhy, WhyTotals> {
  const t = {} as Record<GapWhy, WhyTotals>;
  for (const w of GAP_WHYS) t[w] = { ranges: 0, seqs: 0, readings: 0 };
  return t;
}

export class Deduper {
  private readonly gateways = new Map<string, GatewayState>();
  private readonly now: () => number;
  private readonly maxHoles: number;
  private readonly maxExplained: number;

  constructor(opts: DeduperOptions = {}, state?: DeduperState) {
    this.now = opts.now ?? Date.now;
    this.maxHoles = opts.maxHoles ?? DEFAULT_MAX_HOLES;
    this.maxExplained = opts.maxExplained ?? DEFAULT_MAX_EXPLAINED;
    for (const [gw, g] of Object.entries(state?.gateways ?? {})) this.gateways.set(gw, g);
  }

  /** Keeps what this consumer has not emitted yet; records the message's seqs as seen. */
  accept(msg: DecodedMessage): Accepted {
    const g = this.gateway(msg.gw);
    const now = this.now();
    const fresh = new Set<number>();
    const duplicates: number[] = [];
    const notices: Notice[] = [];
    const noticeBySeq = new Map(msg.notices.map((n) => [n.seq, n]));
    for (const seq of msg.seqs) {
      const n = noticeBySeq.get(seq);
      const isNew = this.settle(g, seq, now);
      if (!isNew) {
        duplicates.push(seq);
        continue;
      }
      fresh.add(seq);
      if (n !== undefined) {
        this.explain(g, n, now);
        notices.push(n);
      }
    }
    this.bound(g);
    return { rows: msg.rows.filter((r) => fresh.has(r.seq)), notices, duplicates };
  }

  report(): GapReport[] {
    const now = this.now();
    return [...this.gateways.entries()].map(([gw, g]) => {
      const first = g.spans[0];
      const last = g.spans[g.spans.length - 1];
      return {
        gw,
        first: first?.from ?? null,
        watermark: first?.to ?? null,
        highest: last?.to ?? null,
        missing: holes(g.spans).map((h) => ({
          ...h,
          seqs: h.to - h.from + 1,
          ageS: Math.max(0, Math.round((now - h.since) / 1000)),
        })),
        explained: g.explained.map((e) => ({
          from: e.from,
          to: e.to,
          why: e.why,
          readings: e.readings,
          noticeSeq: e.noticeSeq,
          receivedSeqs: countSeqs(e.received),
        })),
        totals: g.totals,
        givenUpSeqs: g.givenUpSeqs,
      };
    });
  }

  /** The state to persist (plain JSON). */
  state(): DeduperState {
    return { version: STATE_VERSION, gateways: Object.fromEntries(this.gateways) };
  }

  private gateway(gw: string): GatewayState {
    let g = this.gateways.get(gw);
    if (g === undefined) {
      g = { spans: [], explained: [], totals: emptyTotals(), givenUpSeqs: 0 };
      this.gateways.set(gw, g);
    }
    return g;
  }

  /** True when `seq` had not arrived before (it is settled now). */
  private settle(g: GatewayState, seq: number, now: number): boolean {
    if (!hasSeq(g.spans, seq)) {
      addRange(g.spans, seq, seq, now);
      return true;
    }
    // Settled already: a duplicate, unless a notice explained it and this is its first arrival
    // (a record dropped while in flight, or a notice that overtook its data).
    const e = g.explained.find((x) => seq >= x.from && seq <= x.to);
    if (e === undefined || e.received.some(([f, t]) => seq >= f && seq <= t)) return false;
    addPair(e.received, seq);
    return true;
  }

  private explain(g: GatewayState, n: Notice, now: number): void {
    const received = intersect(g.spans, n.from, n.to);
    addRange(g.spans, n.from, n.to, now);
    g.explained.push({
      from: n.from,
      to: n.to,
      why: n.why,
      readings: n.readings,
      noticeSeq: n.seq,
      noticeT0: n.t0,
      received,
    });
    g.explained.sort((x, y) => x.from - y.from);
    const t = g.totals[n.why];
    t.ranges++;
    t.seqs += n.to - n.from + 1;
    t.readings = t.readings === null || n.readings === null ? null : t.readings + n.readings;
  }

  private bound(g: GatewayState): void {
    while (g.spans.length - 1 > this.maxHoles) {
      // Give up the oldest hole: merge the two lowest spans (its seqs would then count as seen).
      const [a, b] = [g.spans[0]!, g.spans[1]!];
      g.givenUpSeqs += b.from - a.to - 1;
      g.spans.splice(0, 2, { from: a.from, to: b.to, gapSince: null });
    }
    while (g.explained.length > this.maxExplained) g.explained.shift();
  }
}

/** Adds one seq to a small sorted list of inclusive pairs. */
function addPair(pairs: [number, number][], seq: number): void {
  const spans = pairs.map(([from, to]) => ({ from, to, gapSince: null }));
  if (findSpan(spans, seq) >= 0) return;
  addRange(spans, seq, seq, 0);
  pairs.splice(0, pairs.length, ...spans.map((s): [number, number] => [s.from, s.to]));
}
