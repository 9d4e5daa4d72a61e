// Write-behind (DESIGN.md §2.1, issue 9): while the uplink keeps up, a sealed record is handed to
// it at once and written to LevelDB only if its PUBACK has not come by its commit deadline, so a
// healthy online gateway writes almost nothing to its SD card. While the uplink is down or has
// no room (opts.writeBehind gives 0) every record is committed at once, as before.
//
// - Bounded: at most opts.writeBehind() records wait in memory (the uplink's in-flight window);
//   when it is full, the oldest of them is committed (early: before its deadline) and the new
//   record is held in its place. Committing every held record and then the new one, as this did,
//   turned one moment of a full window into a burst of a window's worth of synced writes.
// - Order: records reach the disk in seq order (a direct commit first commits every held one),
//   so the head index, the recent cache and the full policy see seqs as before.
// - Seq: a held record takes its seq at once, only below a reservation (META_RESERVED), raised
//   RESERVE_STEP at a time in a synced batch, under the seq mark. Every batch also says below
//   which seq everything is settled (META_SETTLED: stored, acknowledged, or explained). A start
//   after a crash continues at the reservation, and explains the seqs of [settled, reservation)
//   that it finds neither stored nor explained with `skipped` notices (readings unknown): some
//   were delivered before the crash, the others never used. A clean stop commits what is held and
//   gives the reservation back (META_RESERVED 0), as does a direct commit with nothing held: then
//   the next start continues at the stored next seq, with nothing to explain.
// - Accounting: a record acknowledged while held is counted committed and delivered at once (on
//   disk with the next batch), never written, never deleted (deletes.ts).

import type { Logger } from 'pino';
import type { Clock, GapNotice, Reading } from '../types.js';
import { BurnedSeqError, type Appender } from './append.js';
import type { Db, QueueStore } from './store.js';
import {
  KIND_NOTICE,
  KIND_QUARANTINE,
  KIND_RECORD,
  META_RESERVED,
  META_SETTLED,
  causeText,
  queueKey,
  readNumber,
  seqOfKey,
} from './keys.js';

/** Seqs reserved per synced write: at 5 records/s, one small write every ~3.4 minutes. */
export const RESERVE_STEP = 1024;
/** Time kept for the write itself before a held record's durability deadline. */
export const WRITE_MARGIN_MS = 50;
/** A settled range longer than this (damaged meta) is explained in one gap, without a scan. */
const SCAN_LIMIT = 1_000_000;

export class WriteBehind {
  private timer: unknown = null;
  private timerAt = Infinity;

  constructor(
    private readonly store: QueueStore,
    private readonly appender: Appender,
    /** The queue's mutation chain: commits of held records run through it. */
    private readonly serial: <T>(fn: () => Promise<T>) => Promise<T>,
    /** Tells the followers (the uplink) that there is a record to read. */
    private readonly notify: () => void,
  ) {}

  private get clock(): Clock {
    return this.store.clock;
  }

  private get log(): Logger {
    return this.store.log;
  }

  /**
   * In the chain: hands a record to the uplink without writing it, when there is room. Its seq,
   * or null: commit it now. `durableBy`: monotonic time by which it must be acknowledged or
   * committed (the batcher gives 2 × queue.flush after its first reading).
   */
  async hold(readings: readonly Reading[], durableBy: number): Promise<number | null> {
    const store = this.store;
    const { opts, s } = store;
    const room = opts.writeBehind?.() ?? 0;
    if (opts.opened === undefined || room <= 0) return null;
    // The window is full: the oldest held records make room (the disk still sees seqs in order:
    // every held seq is above every stored one).
    if (store.held.size >= room) await this.commitThrough(store.held.nth(store.held.size - room + 1));
    // Gaps waiting to be sealed go with the next commit (notices.ts): this one is it.
    if (store.notices.due(store.clock.now(), false)) return null;
    if (s.nextSeq >= store.reserved && !(await this.reserve(s.nextSeq))) return null;
    // After the reservation: notices it sealed took the seqs at the next seq.
    const seq = s.nextSeq;
    if (seq >= store.reserved) return null;
    const rec = opts.seal(seq, readings, store.ids);
    // One that could never fit goes the committed way, where the full policy refuses it.
    if (8 + rec.bytes.length > opts.maxBytes - store.quarantineBytes) return null;
    const now = this.clock.monotonic();
    const startBy = durableBy - Math.min(WRITE_MARGIN_MS, Math.max(0, durableBy - now) / 2);
    s.nextSeq = seq + 1;
    store.held.add({ rec, open: opts.opened(seq, readings), startBy });
    this.arm();
    this.notify();
    return seq;
  }

  /** In the chain: commits every held record with seq ≤ upTo (Infinity: all), oldest first. */
  async commitThrough(upTo: number): Promise<void> {
    const store = this.store;
    for (const h of store.held.through(upTo)) {
      const { seq, count } = h.rec;
      let kept: number | null = null;
      try {
        // Refused by the full policy, its seq is given up and explained there (append.ts).
        kept = await this.appender.place(h.rec, undefined, true);
      } catch (err) {
        // A burned seq was counted and explained by the append; anything else is explained here.
        if (!(err instanceof BurnedSeqError)) {
          store.s.lostReadings += count;
          store.notices.add({ from: seq, to: seq, why: 'write-failed', readings: count });
        }
        this.log.error({ code: 'EDGEGW_E_QUEUE_WRITE', seq, err: causeText(err) }, 'commit failed');
      } finally {
        store.held.delete(seq);
      }
      if (kept !== seq) store.held.unstored(seq, store.head);
    }
    // Committed beside acknowledged ones, the index may not cover them: load it from disk.
    if (store.db !== null && store.head.live === 0 && store.s.records > 0) {
      await store.afterRemoval(store.db, 0);
    }
    this.arm();
  }

  /**
   * In the chain, at stop (or when write-behind pauses): commits what is held and gives the
   * reservation back, so the next start has nothing to explain.
   */
  async settle(): Promise<void> {
    this.disarm();
    const store = this.store;
    await this.commitThrough(Infinity);
    if (store.reserved === 0 && store.reservedOnDisk <= 0) return;
    store.reserved = 0;
    await store.writeFigures(store.open(), true);
  }

  /** The next direct commit, with nothing held, gives the reservation back (written with it). */
  release(): void {
    if (this.store.held.size === 0) this.store.reserved = 0;
  }

  stop(): void {
    this.disarm();
  }

  /** Reserves seqs from `seq` on durably (synced, under the seq mark); false when it cannot. */
  private async reserve(seq: number): Promise<boolean> {
    const store = this.store;
    const next = seq + RESERVE_STEP;
    if (!(await this.appender.markAbove(next - 1))) return false;
    const was = store.reserved;
    store.reserved = next;
    try {
      await store.writeFigures(store.open(), true);
      return true;
    } catch (err) {
      // Held seqs must stay below what the disk says; a higher one on disk only widens a gap.
      store.reserved = was;
      this.log.warn({ code: 'EDGEGW_E_QUEUE_WRITE', err: causeText(err) }, 'seq reservation failed');
      return false;
    }
  }

  /** A timer for the earliest held record's commit start. */
  private arm(): void {
    const at = this.store.held.earliest();
    if (at === Infinity) return this.disarm();
    if (this.timer !== null && this.timerAt <= at) return;
    this.disarm();
    this.timerAt = at;
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = null;
        this.timerAt = Infinity;
        this.serial(() => this.commitDue()).catch((err: unknown) => {
          this.log.error({ code: 'EDGEGW_E_QUEUE_WRITE', err: causeText(err) }, 'commit failed');
        });
      },
      Math.max(0, at - this.clock.monotonic()),
    );
  }

  private disarm(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
  }

  /** In the chain: commits the held records whose time came, with every older one. */
  private async commitDue(): Promise<void> {
    const now = this.clock.monotonic();
    let last = -Infinity;
    for (const h of this.store.held.values()) if (h.startBy <= now) last = h.rec.seq;
    if (last === -Infinity) return this.arm();
    await this.commitThrough(last);
  }
}

/**
 * At open (open.ts): where a start continues, and the `skipped` gaps it must explain after a
 * crash with a reservation outstanding. The seqs of [settled, reserved) that are neither stored
 * (record, notice, quarantined) nor in a known gap were held when the process died: delivered,
 * or never used; which of the two cannot be known.
 */
export async function recoverReservation(
  db: Db,
  nextSeq: number,
  known: readonly GapNotice[],
): Promise<{ reserved: number; settled: number; nextSeq: number; lost: GapNotice[] }> {
  const reserved = readNumber(await db.get(META_RESERVED));
  const settled = readNumber(await db.get(META_SETTLED));
  if (reserved <= 0) return { reserved: 0, settled, nextSeq, lost: [] };
  const to = Math.max(nextSeq, reserved);
  const from = Math.max(1, Math.min(settled > 0 ? settled : nextSeq, to));
  return { reserved, settled, nextSeq: to, lost: await unsettled(db, from, to, known) };
}

async function unsettled(
  db: Db,
  from: number,
  to: number,
  known: readonly GapNotice[],
): Promise<GapNotice[]> {
  if (to <= from) return [];
  if (to - from > SCAN_LIMIT) return [{ from, to: to - 1, why: 'skipped', readings: null }];
  const present = new Set<number>();
  for (const kind of [KIND_RECORD, KIND_NOTICE, KIND_QUARANTINE]) {
    for await (const k of db.keys({ gte: queueKey(kind, from), lt: queueKey(kind, to) })) {
      present.add(seqOfKey(k));
    }
  }
  const out: GapNotice[] = [];
  for (let seq = from; seq < to; seq++) {
    if (present.has(seq) || known.some((g) => g.from <= seq && seq <= g.to)) continue;
    const last = out[out.length - 1];
    if (last !== undefined && last.to === seq - 1) out[out.length - 1] = { ...last, to: seq };
    else out.push({ from: seq, to: seq, why: 'skipped', readings: null });
  }
  return out;
}
