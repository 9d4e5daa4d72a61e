// Group commit: readings wait here at most flushMs (DESIGN.md §2.1) and are committed together,
// because one LevelDB entry holding many readings is what makes the disk keep up (§8). A commit
// starts flushMs after the first waiting reading arrived, or as soon as maxReadings wait. At most
// one commit is in flight; readings arriving meanwhile go to the next one. A failed commit is
// never silent: onError hears of it and the readings are counted as failed.

import type { Clock, Lifecycle, Progress, Reading } from '../types.js';

export interface BatcherOptions {
  flushMs: number;
  maxReadings: number;
  clock: Clock;
  /**
   * `durableBy` (monotonic): 2 × flushMs after the batch's first reading arrived, when its
   * readings must be acknowledged or committed at the latest (DESIGN.md §2.1, write-behind).
   */
  commit: (readings: Reading[], durableBy: number) => Promise<unknown>;
  onError: (err: unknown) => void;
}

export interface BatcherStats {
  committedReadings: number;
  committedBatches: number;
  failedReadings: number;
  failedBatches: number;
  waiting: number;
}

export class Batcher implements Lifecycle {
  private waiting: Reading[] = [];
  private timer: unknown = null;
  private inFlight: Promise<void> | null = null;
  /** The flush deadline passed (or maxReadings were reached) while a commit was in flight. */
  private due = false;
  private running = false;
  /** Monotonic arrival of the oldest waiting reading, and of the commit in flight's first one. */
  private waitingSince: number | null = null;
  private inFlightSince: number | null = null;
  /** Readings handed to a commit so far, and those whose commit finished (settle() waits on them). */
  private taken = 0;
  private finished = 0;
  private readonly counts: Omit<BatcherStats, 'waiting'> = {
    committedReadings: 0,
    committedBatches: 0,
    failedReadings: 0,
    failedBatches: 0,
  };

  private opts: BatcherOptions;

  constructor(opts: BatcherOptions) {
    checkLimits(opts);
    this.opts = opts;
  }

  /**
   * A reload: what waits now is committed at once under the old settings (its flush deadline
   * was promised with them), then later readings follow the new interval and size.
   */
  setFlush(limits: Pick<BatcherOptions, 'flushMs' | 'maxReadings'>): void {
    checkLimits(limits);
    if (this.waiting.length > 0) this.kick();
    this.opts = { ...this.opts, flushMs: limits.flushMs, maxReadings: limits.maxReadings };
  }

  start(): Promise<void> {
    this.running = true;
    return Promise.resolve();
  }

  add(r: Reading): void {
    if (!this.running) {
      this.counts.failedReadings++;
      this.report(new Error('a reading arrived while the batcher was stopped; it was not committed'));
      return;
    }
    if (this.waiting.length === 0) this.waitingSince = this.opts.clock.monotonic();
    this.waiting.push(r);
    if (this.waiting.length >= this.opts.maxReadings) this.kick();
    else if (this.timer === null) {
      this.timer = this.opts.clock.setTimeout(() => {
        this.timer = null;
        this.kick();
      }, this.opts.flushMs);
    }
  }

  /**
   * For the watchdog: the oldest reading not yet through a commit (committed or failed, both are
   * progress) must be through by flushMs after it arrived; nothing waiting is nothing due.
   */
  progress(): Progress {
    const since = this.inFlightSince ?? this.waitingSince;
    return { due: since === null ? null : since + this.opts.flushMs, what: 'commit' };
  }

  stats(): BatcherStats {
    return { ...this.counts, waiting: this.waiting.length };
  }

  /** Commits everything still waiting and waits for the commit in flight. */
  async stop(): Promise<void> {
    this.running = false;
    await this.settle();
  }

  /**
   * Commits everything waiting now and waits until it is committed; keeps running. Readings that
   * arrive meanwhile are not waited for (a steady flow would never let this end).
   */
  async settle(): Promise<void> {
    this.clearTimer();
    const target = this.taken + this.waiting.length;
    while (this.finished < target) {
      if (this.inFlight === null) this.commitNext();
      if (this.inFlight === null) return;
      await this.inFlight;
    }
  }

  private kick(): void {
    this.due = true;
    if (this.inFlight === null) this.commitNext();
  }

  private commitNext(): void {
    const batch = this.waiting.splice(0, this.opts.maxReadings);
    if (batch.length > 0) this.inFlightSince = this.waitingSince;
    // Left-overs arrived after the batch's first reading; counting them from now errs by < flushMs.
    this.waitingSince = this.waiting.length > 0 ? this.opts.clock.monotonic() : null;
    // Readings left over were waiting before this commit started: they go next, not after a new timer.
    this.due = this.waiting.length > 0;
    if (!this.due) this.clearTimer();
    if (batch.length === 0) return;
    this.taken += batch.length;
    const durableBy = (this.inFlightSince ?? this.opts.clock.monotonic()) + 2 * this.opts.flushMs;
    this.inFlight = this.run(batch, durableBy).finally(() => {
      this.finished += batch.length;
      this.inFlight = null;
      this.inFlightSince = null;
      if (this.running && (this.due || this.waiting.length >= this.opts.maxReadings)) this.commitNext();
    });
  }

  private async run(batch: Reading[], durableBy: number): Promise<void> {
    try {
      await this.opts.commit(batch, durableBy);
      this.counts.committedReadings += batch.length;
      this.counts.committedBatches++;
    } catch (err) {
      this.counts.failedReadings += batch.length;
      this.counts.failedBatches++;
      this.report(err);
    }
  }

  private report(err: unknown): void {
    try {
      this.opts.onError(err);
    } catch {
      // The error handler failing must not stop the next commit.
    }
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      this.opts.clock.clearTimeout(this.timer);
      this.timer = null;
    }
  }
}

function checkLimits(o: Pick<BatcherOptions, 'flushMs' | 'maxReadings'>): void {
  if (!(o.flushMs > 0) || !(o.maxReadings >= 1)) {
    throw new RangeError('Batcher needs flushMs > 0 and maxReadings >= 1');
  }
}
