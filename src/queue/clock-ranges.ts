// Records committed while the wall clock was not known good (true timestamps, issue 10). Their
// readings were stamped `base + sinceBoot` (src/sensors/clock-sync.ts): monotonic time since boot
// from a wall base taken at start, so a step of the wall clock before the sync does not distort
// them. The queue keeps, in META_CLOCK and in the same batch as each such commit, the seq ranges
// so stamped with their boot id and base; when the clock is found good in that boot the offset
// (true wall − since-boot, minus the base) is stored too, and the read path adds it to every
// reading of the range before the record is published — records sealed on disk long before the
// sync included. A range of another boot that never got an offset cannot be corrected any more
// (since-boot time restarts at each boot): its readings are published with quality `unsynced`.
// While the clock is unsynced in this boot, this boot's ranges are held back from the uplink
// (`holding`), so they go out corrected rather than wrong.
//
// Kept in a meta key of its own, as compact JSON: a handful of ranges (one per unsynced run of the
// daemon whose records are still queued), pruned below the queue's head at each write.

import type { OpenRecord, Reading } from '../types.js';
import type { Db } from './store.js';

/** Key 0x01..20: beside keys.ts's meta keys, far from the numbers other parts take next. */
import { META_CLOCK } from './keys.js';
export { META_CLOCK };

/** How a record's readings were stamped while the clock was not known good. */
export interface ClockStamp {
  /** /proc/sys/kernel/random/boot_id of the boot the readings were taken in. */
  readonly boot: string;
  /** Wall − since-boot time when stamping began (ms): the readings' ts are base + since-boot. */
  readonly base: number;
}

export interface ClockRange extends ClockStamp {
  readonly from: number;
  readonly to: number;
  /** Ms to add to every reading's ts; null until the clock was found good in that boot. */
  readonly offset: number | null;
}

/** More ranges than this (as many unsynced boots with records still queued) merge the oldest two. */
export const MAX_CLOCK_RANGES = 256;

/** A boot id no boot has: a merged range can never be corrected (its readings stay `unsynced`). */
const MERGED = '';

export interface RangesChange {
  readonly value: Uint8Array;
  apply(): void;
}

export class ClockRanges {
  private ranges: readonly ClockRange[] = [];
  /** The boot this process runs in; null when no clock tracking was set up (read-only commands). */
  private boot: string | null = null;
  private holding = false;

  list(): readonly ClockRange[] {
    return this.ranges;
  }

  /** This boot's ranges with no offset yet are held back from reads while `holding`. */
  setHold(boot: string, holding: boolean): void {
    this.boot = boot;
    this.holding = holding;
  }

  get held(): boolean {
    return this.holding;
  }

  async load(db: Db): Promise<void> {
    this.ranges = parseRanges(await db.get(META_CLOCK));
  }

  /** The ranges once record `seq`, stamped `stamp`, is committed (put in that commit's batch). */
  withCommit(seq: number, stamp: ClockStamp, firstSeq: number): RangesChange {
    const kept = this.ranges.filter((r) => r.to >= firstSeq);
    const last = kept[kept.length - 1];
    let next: ClockRange[];
    if (last !== undefined && last.boot === stamp.boot && last.base === stamp.base && last.offset === null) {
      next = [...kept.slice(0, -1), { ...last, to: seq }];
    } else {
      next = [...kept, { boot: stamp.boot, base: stamp.base, from: seq, to: seq, offset: null }];
    }
    while (next.length > MAX_CLOCK_RANGES) next = mergeOldest(next);
    return this.change(next);
  }

  /**
   * The clock is good now in `boot`, where wall − since-boot reads `wallBase`: every range of that
   * boot still without an offset gets one. Null when there is none to correct.
   */
  withSync(
    boot: string,
    wallBase: number,
    firstSeq: number,
  ): (RangesChange & { corrected: ClockRange[] }) | null {
    const corrected: ClockRange[] = [];
    const next = this.ranges
      .filter((r) => r.to >= firstSeq)
      .map((r) => {
        if (r.boot !== boot || r.offset !== null) return r;
        const c = { ...r, offset: Math.round(wallBase - r.base) };
        corrected.push(c);
        return c;
      });
    return corrected.length === 0 ? null : { ...this.change(next), corrected };
  }

  /** Ranges with records still queued (seq ≥ firstSeq) whose offset is not known yet. */
  pending(firstSeq: number): number {
    return this.ranges.filter((r) => r.offset === null && r.to >= firstSeq).length;
  }

  /** The first seq held back from reads, or null when none is. */
  firstHeld(): number | null {
    if (!this.holding) return null;
    for (const r of this.ranges) if (r.offset === null && r.boot === this.boot) return r.from;
    return null;
  }

  /**
   * A record as it must be published: ts corrected by its range's offset, or quality `unsynced`
   * when the offset can no longer be known, or null while it is held. Records outside every range
   * (a clock good from the start: the usual case) come back as they are.
   */
  correct(rec: OpenRecord): OpenRecord | null {
    if (this.ranges.length === 0) return rec;
    const r = this.ranges.find((x) => x.from <= rec.seq && rec.seq <= x.to);
    if (r === undefined) return rec;
    const offset = r.offset;
    if (offset !== null) {
      return { ...rec, readings: rec.readings.map((x): Reading => ({ ...x, ts: x.ts + offset })) };
    }
    if (this.holding && r.boot === this.boot) return null;
    // bad and stale say the value itself is doubtful: they stay, and say more than the time.
    return {
      ...rec,
      readings: rec.readings.map((x): Reading => (x.quality === 'good' ? { ...x, quality: 'unsynced' } : x)),
    };
  }

  private change(next: readonly ClockRange[]): RangesChange {
    return {
      value: new TextEncoder().encode(JSON.stringify(next)),
      apply: () => {
        this.ranges = next;
      },
    };
  }
}

function mergeOldest(ranges: readonly ClockRange[]): ClockRange[] {
  const [a, b, ...rest] = ranges;
  if (a === undefined || b === undefined) return [...ranges];
  // The seqs between them were stamped right, but cannot be told apart any more: `unsynced`
  // understates what is known, which is better than publishing a wrong time as good.
  return [{ boot: MERGED, base: a.base, from: a.from, to: b.to, offset: null }, ...rest];
}

/** The stored ranges; anything malformed reads as none (nothing of it is trusted). */
export function parseRanges(b: Uint8Array | undefined): ClockRange[] {
  if (b === undefined) return [];
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(b));
  } catch {
    return [];
  }
  if (!Array.isArray(raw)) return [];
  const out: ClockRange[] = [];
  for (const x of raw as unknown[]) {
    const r = x as Partial<Record<keyof ClockRange, unknown>>;
    if (
      typeof r.boot !== 'string' ||
      typeof r.base !== 'number' ||
      !Number.isSafeInteger(r.from) ||
      !Number.isSafeInteger(r.to) ||
      !(r.offset === null || typeof r.offset === 'number')
    ) {
      return [];
    }
    out.push({ boot: r.boot, base: r.base, from: r.from as number, to: r.to as number, offset: r.offset });
  }
  return out;
}
