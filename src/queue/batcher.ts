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
  commit: (readings: Reading[]) => Promise<unknown>;
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
  private readonly counts: Omit<BatcherStats, 'waiting'> = {
    committedReadings: 0,
    committedBatches: 0,
    failedReadings: 0,
    failedBatches: 0,
  };

  constructor(private readonly opts: BatcherOptions) {
    if (!(opts.flushMs > 0) || !(opts.maxReadings >= 1)) {
      throw new RangeError('Batcher needs flushMs > 0 and maxReadings >= 1');
    }
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
    this.clearTimer();
    while (this.inFlight !== null || this.waiting.length > 0) {
      if (this.inFlight === null) this.commitNext();
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
    this.inFlight = this.run(batch).finally(() => {
      this.inFlight = null;
      this.inFlightSince = null;
      if (this.running && (this.due || this.waiting.length >= this.opts.maxReadings)) this.commitNext();
    });
  }

  private async run(batch: Reading[]): Promise<void> {
    try {
      await this.opts.commit(batch);
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
