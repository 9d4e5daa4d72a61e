// Notice records: the stream's own explanation of every seq it will never deliver (DESIGN.md
// §2.2, §3). A drop by the full policy, a quarantine, a seq burned by a failed write, or seqs
// skipped (a repair continuing at the seq mark) each become a *gap* {from, to, why, readings}.
//
// Gaps first wait as *pending*: kept in plain meta (META_PENDING_GAPS: seq ranges and counts
// only, never values, DESIGN.md §2.6) and written in the same batch as the change they explain,
// so a drop or a quarantine can never be on disk without its gap. Pending gaps are sealed into
// notice records (each with its own seq, under KIND_NOTICE) by a later synced batch, at most once
// per SEAL_EVERY_MS, so a queue that stays full coalesces its drops into a few notices rather
// than one per append. Notices are never dropped by the full policy; they are deleted only after
// their PUBACK, like records.
//
// Bounds: at most MAX_QUEUED notices wait for their PUBACK (kept in memory, ~50 bytes each);
// past it, gaps stay pending and coalesce. At most MAX_PENDING pending gaps: past it, a new gap is
// merged into the pending gap of the same why nearest to it (the range then also covers seqs that
// may have been delivered: a consumer that has them keeps them; the gap only says none is missing
// unexplained). A gap whose batch failed stays pending in memory and goes with the next write; a
// crash before that loses only write-failed gaps, whose seq was never published nor stored, and
// is therefore handed out again at the next start (nothing to explain).

import type { GapNotice, GapWhy, SealedRecord } from '../types.js';
import {
  KIND_NOTICE,
  META_NEXT_SEQ,
  META_NOTICE_TOTALS,
  META_PENDING_GAPS,
  numberValue,
  queueKey,
} from './keys.js';

export const SEAL_EVERY_MS = 10_000;
export const MAX_QUEUED = 1024;
export const MAX_PENDING = 256;

export interface NoticeTotals {
  /** Notice records ever committed, delivered (PUBACK), and quarantined (failed authentication). */
  committed: number;
  delivered: number;
  quarantined: number;
}

interface Putter {
  put(key: Uint8Array, value: Uint8Array): unknown;
  del(key: Uint8Array): unknown;
}

export class NoticeBook {
  /** Gaps not yet sealed into notices, oldest first. */
  private pending: GapNotice[] = [];
  /** Whether `pending` differs from META_PENDING_GAPS on disk. */
  private dirty = false;
  /** Committed notices waiting for their PUBACK, by seq. */
  private readonly queued = new Map<number, SealedRecord>();
  /** Acknowledged notices whose delete is not yet written. */
  private deletes: number[] = [];
  totals: NoticeTotals = { committed: 0, delivered: 0, quarantined: 0 };
  private totalsDirty = false;
  private lastSealed = -Infinity;

  /** State read at open: the queued notices, the stored totals and the pending gaps. */
  load(queued: readonly SealedRecord[], totals: NoticeTotals | null, pending: readonly GapNotice[]): void {
    this.queued.clear();
    for (const rec of queued) this.queued.set(rec.seq, rec);
    this.pending = [...pending];
    this.dirty = false;
    this.deletes = [];
    const t = totals ?? { committed: 0, delivered: 0, quarantined: 0 };
    // committed = delivered + quarantined + queued at every instant (no notice is ever dropped).
    const committed = t.delivered + t.quarantined + queued.length;
    this.totalsDirty = t.committed !== committed || totals === null;
    this.totals = { ...t, committed };
  }

  get queuedCount(): number {
    return this.queued.size;
  }

  get pendingGaps(): readonly GapNotice[] {
    return this.pending;
  }

  has(seq: number): boolean {
    return this.queued.has(seq);
  }

  /** Queued notices with seq ≥ from, in seq order. */
  from(from: number): SealedRecord[] {
    const out: SealedRecord[] = [];
    for (const rec of this.queued.values()) if (rec.seq >= from) out.push(rec);
    return out.sort((a, b) => a.seq - b.seq);
  }

  /** A gap known in memory only (its batch is not written yet, or failed): goes with the next write. */
  add(gap: GapNotice): void {
    this.pending = coalesce(this.pending, [gap]);
    this.dirty = true;
  }

  /** The broker acknowledged notice `seq`: gone now, its delete written with the next batch. */
  acked(seq: number): boolean {
    if (!this.queued.delete(seq)) return false;
    this.deletes.push(seq);
    this.totals = { ...this.totals, delivered: this.totals.delivered + 1 };
    this.totalsDirty = true;
    return true;
  }

  /** Notice `seq` failed authentication: out of the queue; its own seq becomes a quarantined gap. */
  quarantined(seq: number): SealedRecord | undefined {
    const rec = this.queued.get(seq);
    if (rec === undefined) return undefined;
    this.queued.delete(seq);
    this.totals = { ...this.totals, quarantined: this.totals.quarantined + 1 };
    this.totalsDirty = true;
    this.add({ from: seq, to: seq, why: 'quarantined', readings: 0 });
    return rec;
  }

  get deletesPending(): boolean {
    return this.deletes.length > 0;
  }

  /** Whether pending gaps should be sealed by a batch now (`now` on the queue's clock). */
  due(now: number, force: boolean, extra = 0): boolean {
    if (this.pending.length + extra === 0 || this.queued.size >= MAX_QUEUED) return false;
    return force || now - this.lastSealed >= SEAL_EVERY_MS;
  }

  /**
   * Puts into `b` what this book must write with it: the pending gaps sealed as notices from
   * seq `base` when `seal` is given (then META_NEXT_SEQ past them), the pending gaps left, the
   * notice deletes and the totals. Returns what apply() needs once `b` is written.
   */
  take(
    b: Putter,
    base: number,
    seal: ((seq: number, gap: GapNotice) => SealedRecord) | null,
    extra: readonly GapNotice[],
  ): NoticeBatch {
    const sealed: SealedRecord[] = [];
    let gaps = extra.length > 0 ? coalesce(this.pending, extra) : this.pending;
    if (seal !== null) {
      const room = MAX_QUEUED - this.queued.size;
      for (const gap of gaps.slice(0, room)) {
        const rec = seal(base + sealed.length, gap);
        b.put(queueKey(KIND_NOTICE, rec.seq), rec.bytes);
        sealed.push(rec);
      }
      gaps = gaps.slice(sealed.length);
      if (sealed.length > 0) b.put(META_NEXT_SEQ, numberValue(base + sealed.length));
    }
    const pendingChanged = this.dirty || sealed.length > 0 || extra.length > 0;
    if (pendingChanged) {
      if (gaps.length > 0) b.put(META_PENDING_GAPS, gapsValue(gaps));
      else b.del(META_PENDING_GAPS);
    }
    const deletes = this.deletes;
    this.deletes = [];
    for (const seq of deletes) b.del(queueKey(KIND_NOTICE, seq));
    const totals = { ...this.totals, committed: this.totals.committed + sealed.length };
    if (this.totalsDirty || sealed.length > 0) b.put(META_NOTICE_TOTALS, noticeTotalsValue(totals));
    return { sealed, gaps, deletes, pendingChanged };
  }

  /** The batch holding `t` was written (`now` on the queue's clock). */
  settle(t: NoticeBatch, now: number): void {
    for (const rec of t.sealed) this.queued.set(rec.seq, rec);
    if (t.sealed.length > 0) this.lastSealed = now;
    if (t.pendingChanged) {
      this.pending = [...t.gaps];
      this.dirty = false;
    }
    this.totals = { ...this.totals, committed: this.totals.committed + t.sealed.length };
    this.totalsDirty = false;
  }

  /** The batch holding `t` failed: its deletes are pending again; nothing else changed. */
  restore(t: NoticeBatch): void {
    this.deletes = t.deletes.concat(this.deletes);
  }
}

export interface NoticeBatch {
  sealed: SealedRecord[];
  /** The gaps still pending once the batch is written. */
  gaps: readonly GapNotice[];
  deletes: number[];
  pendingChanged: boolean;
}

/**
 * `pending` with `more` added: a gap adjacent to the last one of the same why extends it. Past
 * MAX_PENDING, a gap widens the newest pending gap of its why (see the header) instead.
 */
export function coalesce(pending: readonly GapNotice[], more: readonly GapNotice[]): GapNotice[] {
  const out = [...pending];
  for (const gap of more) {
    const last = out[out.length - 1];
    if (last !== undefined && last.why === gap.why && last.to + 1 === gap.from) {
      out[out.length - 1] = { ...last, to: gap.to, readings: sum(last.readings, gap.readings) };
      continue;
    }
    const same = out.length >= MAX_PENDING ? out.findLastIndex((g) => g.why === gap.why) : -1;
    const near = out[same];
    if (near === undefined) {
      out.push(gap);
      continue;
    }
    out[same] = {
      from: Math.min(near.from, gap.from),
      to: Math.max(near.to, gap.to),
      why: near.why,
      readings: sum(near.readings, gap.readings),
    };
  }
  return out;
}

function sum(a: number | null, b: number | null): number | null {
  return a === null || b === null ? null : a + b;
}

const WHYS: readonly GapWhy[] = ['dropped', 'quarantined', 'write-failed', 'skipped'];

/** Pending gaps as stored: plain JSON of seq ranges and counts. */
export function gapsValue(gaps: readonly GapNotice[]): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(gaps));
}

/** The stored pending gaps; malformed entries are skipped (an absent value is none). */
export function readGaps(b: Uint8Array | undefined): GapNotice[] {
  if (b === undefined) return [];
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(b));
  } catch {
    return [];
  }
  if (!Array.isArray(v)) return [];
  return v.filter(
    (g: Partial<GapNotice>): g is GapNotice =>
      typeof g === 'object' &&
      g !== null &&
      Number.isSafeInteger(g.from) &&
      Number.isSafeInteger(g.to) &&
      WHYS.includes(g.why as GapWhy) &&
      (g.readings === null || Number.isSafeInteger(g.readings)),
  );
}

export function noticeTotalsValue(t: NoticeTotals): Uint8Array {
  const b = new Uint8Array(24);
  const v = new DataView(b.buffer);
  v.setFloat64(0, t.committed);
  v.setFloat64(8, t.delivered);
  v.setFloat64(16, t.quarantined);
  return b;
}

export function readNoticeTotals(b: Uint8Array | undefined): NoticeTotals | null {
  if (b?.length !== 24) return null;
  const v = new DataView(b.buffer, b.byteOffset, 24);
  const t = { committed: v.getFloat64(0), delivered: v.getFloat64(8), quarantined: v.getFloat64(16) };
  return Object.values(t).every((n) => Number.isSafeInteger(n) && n >= 0) ? t : null;
}
