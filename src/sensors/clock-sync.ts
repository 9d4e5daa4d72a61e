// True timestamps on a board without a battery-backed clock (issue 10). Until the wall clock is
// known good, readings are stamped `base + sinceBoot()`: monotonic time since boot from a wall base
// taken at start, so a step of the wall clock before the sync does not distort them. The clock
// becomes known good when the source says so (sync-source.ts), or when a jump is seen (wall −
// since-boot moves by more than `jumpMs`: NTP stepped it). Then the offset between true time and
// the stamps is measured, and:
//  - readings stamped but not committed yet are corrected in memory at their commit (commit());
//  - records committed before carry their ClockStamp in the queue (src/queue/clock-ranges.ts),
//    which corrects them when they are read for publishing (onSync gives it the measurement);
//  - later readings are stamped with the wall clock itself.
// Once synced, nothing here runs on the hot path but one boolean test; a clock good from the start
// never stamps otherwise, marks nothing and writes nothing.

import type { Logger } from 'pino';
import type { Clock, Lifecycle, Reading, SensorObserver } from '../types.js';
import type { ClockStamp } from '../queue/clock-ranges.js';
import type { SyncSource } from './sync-source.js';

export type SyncVia = 'start' | 'source' | 'jump';

export interface ClockSyncEvent {
  readonly boot: string;
  /** True wall − since-boot time now (ms). */
  readonly wallBase: number;
  /** Ms added to this run's stamps; null when the clock was good from the start. */
  readonly offset: number | null;
  readonly via: SyncVia;
}

export interface ClockSyncOptions {
  clock: Clock;
  source: SyncSource;
  bootId: string;
  /** Ms since boot, the same in every process of a boot (sync-source.ts sinceBoot). */
  sinceBoot: () => number;
  pollMs: number;
  jumpMs: number;
  /** How long this boot's unsynced records are held from the uplink before they go `unsynced`. */
  holdMs: number;
  log?: Logger;
  /** The clock is good (at start or later): the queue corrects this boot's ranges. */
  onSync: (e: ClockSyncEvent) => Promise<void>;
  /** Holds this boot's uncorrected records back from the uplink (true), or releases them. */
  onHold: (holding: boolean) => void;
  /** Stamps move by `offsetMs` from now on (called before any later reading is stamped). */
  onShift?: (offsetMs: number) => void;
}

export interface ClockSyncStatus {
  synced: boolean;
  source: string;
  /** How the clock was found good: at start, by the source, by a jump; null while unsynced. */
  via: SyncVia | null;
  /** The correction measured for this run's early readings (ms); null when none was needed. */
  offsetMs: number | null;
  /** This boot's unsynced records are held back from the uplink. */
  holding: boolean;
}

export class ClockSync implements Lifecycle {
  private synced = true;
  private base = 0;
  private offset: number | null = null;
  private via: SyncVia | null = null;
  private holding = false;
  private running = false;
  private pollTimer: unknown = null;
  private holdTimer: unknown = null;
  /** Readings stamped before the sync; only filled while unsynced. */
  private readonly early = new WeakSet<Reading>();
  /** Some early readings may still wait in the batcher (commits take readings in arrival order). */
  private earlyWaiting = false;

  /** The clock sensor drivers stamp with: `now()` is base + since-boot until the sync. */
  readonly stampClock: Clock;

  constructor(private readonly opts: ClockSyncOptions) {
    const c = opts.clock;
    this.stampClock = {
      now: () => (this.synced ? c.now() : Math.round(this.base + opts.sinceBoot())),
      monotonic: () => c.monotonic(),
      setTimeout: (fn, ms) => c.setTimeout(fn, ms),
      clearTimeout: (h) => c.clearTimeout(h),
    };
  }

  async start(): Promise<void> {
    const { opts } = this;
    this.running = true;
    if (await opts.source.synced()) {
      this.via = 'start';
      // An earlier run of this boot may have left unsynced records: they can be corrected now.
      await opts.onSync({ boot: opts.bootId, wallBase: this.wallBase(), offset: null, via: 'start' });
      return;
    }
    this.synced = false;
    this.base = this.wallBase();
    opts.log?.warn(
      { code: 'EDGEGW_E_CLOCK', source: opts.source.name, holdMs: opts.holdMs },
      'wall clock not known good yet: readings are stamped on monotonic time and corrected at the sync',
    );
    if (opts.holdMs > 0) {
      this.setHold(true);
      this.holdTimer = opts.clock.setTimeout(() => {
        this.holdTimer = null;
        opts.log?.warn(
          { code: 'EDGEGW_E_CLOCK', holdMs: opts.holdMs },
          'wall clock still not known good: records held for it are published with quality unsynced',
        );
        this.setHold(false);
      }, opts.holdMs);
    }
    this.schedule();
  }

  stop(): Promise<void> {
    this.running = false;
    for (const t of [this.pollTimer, this.holdTimer]) if (t !== null) this.opts.clock.clearTimeout(t);
    this.pollTimer = this.holdTimer = null;
    return Promise.resolve();
  }

  /** Readings are stamped on monotonic time for a later correction (cheap: on the hot path). */
  get stamping(): boolean {
    return !this.synced;
  }

  status(): ClockSyncStatus {
    return {
      synced: this.synced,
      source: this.opts.source.name,
      via: this.via,
      offsetMs: this.offset,
      holding: this.holding,
    };
  }

  /** Marks what is read before the sync, so a commit after it can correct it (wrap it outermost but the batcher). */
  wrap(observer: SensorObserver): SensorObserver {
    return {
      reading: (r) => {
        if (!this.synced) {
          this.early.add(r);
          this.earlyWaiting = true;
        }
        observer.reading(r);
      },
      error: (sensor, code, message) => observer.error(sensor, code, message),
      overrun: (scope, skipped) => observer.overrun(scope, skipped),
    };
  }

  /**
   * A batch as it must be committed: while unsynced, with its ClockStamp (the queue keeps its
   * range); after the sync, early readings still waiting corrected by the offset.
   */
  commit(readings: readonly Reading[]): { readings: readonly Reading[]; stamp?: ClockStamp } {
    if (!this.synced) return { readings, stamp: { boot: this.opts.bootId, base: this.base } };
    if (!this.earlyWaiting) return { readings };
    const offset = this.offset ?? 0;
    let later = false;
    const out = readings.map((r) => {
      if (!this.early.has(r)) {
        later = true;
        return r;
      }
      return { ...r, ts: r.ts + offset };
    });
    // A later reading in this batch: every early one was committed before it or in it.
    if (later) this.earlyWaiting = false;
    return { readings: out };
  }

  /** Wall − since-boot now: constant while nobody steps the wall clock. */
  private wallBase(): number {
    return this.opts.clock.now() - this.opts.sinceBoot();
  }

  private schedule(): void {
    if (!this.running) return;
    this.pollTimer = this.opts.clock.setTimeout(() => {
      this.pollTimer = null;
      void this.poll().catch((err: unknown) => {
        this.opts.log?.warn({ code: 'EDGEGW_E_CLOCK', err: String(err) }, 'clock sync check failed');
        this.schedule();
      });
    }, this.opts.pollMs);
  }

  private async poll(): Promise<void> {
    if (!this.running || this.synced) return;
    // The source first: an NTP step is a jump too, and the source says more about it.
    const said = await this.opts.source.synced();
    const jumped = Math.abs(this.wallBase() - this.base) > this.opts.jumpMs;
    const via: SyncVia | null = said ? 'source' : jumped ? 'jump' : null;
    if (!this.running || this.synced) return;
    if (via === null) return this.schedule();
    await this.sync(via);
  }

  private async sync(via: SyncVia): Promise<void> {
    const { opts } = this;
    const wallBase = this.wallBase();
    const offset = Math.round(wallBase - this.base);
    // From here readings are stamped with the wall clock; those stamped before are corrected at
    // their commit or, committed already, by the queue once onSync wrote the offset.
    this.synced = true;
    this.offset = offset;
    this.via = via;
    if (this.holdTimer !== null) opts.clock.clearTimeout(this.holdTimer);
    this.holdTimer = null;
    opts.onShift?.(offset);
    opts.log?.info({ code: 'EDGEGW_E_CLOCK', via, offsetMs: offset }, 'wall clock known good');
    try {
      await opts.onSync({ boot: opts.bootId, wallBase, offset, via });
    } finally {
      // Held records must not wait forever: if the offset could not be written they go unsynced.
      this.setHold(false);
    }
  }

  private setHold(holding: boolean): void {
    if (holding === this.holding) return;
    this.holding = holding;
    this.opts.onHold(holding);
  }
}
