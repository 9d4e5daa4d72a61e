// Group commit: readings wait here at most flushMs (DESIGN.md §2.1) and are committed together,
// because one LevelDB entry holding many readings is what makes the disk keep up (§8). A commit
// starts flushMs after the first waiting reading arrived, or as soon as maxReadings wait. At most
// one commit is in flight; readings arriving meanwhile go to the next one. A failed commit is
// never silent: onError hears of it and the readings are counted as failed.
//
// Offline (opts.offline: every record is synced to disk at once, none can wait for a PUBACK), a
// batch waits longer: up to 2 × flushMs after its first reading, less COMMIT_MARGIN_MS for the
// write, which is still within guarantee 1 (durable at most 2 × flush after it was read). Each
// synced commit costs an SD card a data block and a journal transaction (~18 KB on ext4 with
// 4 KiB blocks) however little it holds: with readings at spread phases, a 350 ms window instead
// of 200 ms makes ~43% fewer commits. A batch keeps the window it started with.
//
// A batch is formed in place as its readings come: an array sized for the batch before it, so a
// reading costs one slot written, not a share of an array grown and copied step by step and then
// spliced (GC work that was a fifth of the pipeline's CPU). A batch that reaches maxReadings while
// a commit is in flight is closed, and the next one starts; each keeps its first reading's arrival.

import type { Clock, Lifecycle, Progress, Reading } from '../types.js';

/** Time kept for the commit itself before the durability deadline of an offline batch. */
export const COMMIT_MARGIN_MS = 50;

/** How long a batch waits after its first reading: flushMs, or offline as long as guarantee 1 allows. */
export function batchWindow(flushMs: number, offline: boolean): number {
  return offline ? flushMs + Math.max(0, flushMs - COMMIT_MARGIN_MS) : flushMs;
}

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
  /**
   * True while a commit goes to disk at once (the uplink is not connected, so write-behind holds
   * nothing): a batch started then waits batchWindow(flushMs, true). Default: never.
   */
  offline?: () => boolean;
}

export interface BatcherStats {
  committedReadings: number;
  committedBatches: number;
  failedReadings: number;
  failedBatches: number;
  waiting: number;
}

export class Batcher implements Lifecycle {
  /** The batch being formed: its first `n` slots, when its first reading arrived, its window. */
  private current: Reading[] = [];
  private n = 0;
  private currentSince: number | null = null;
  private currentWindow = 0;
  /** Batches closed at maxReadings, waiting for the commit in flight, oldest first. */
  private readonly closed: Batch[] = [];
  private closedReadings = 0;
  private timer: unknown = null;
  private inFlight: Promise<void> | null = null;
  /** The flush deadline passed (or maxReadings were reached) while a commit was in flight. */
  private due = false;
  private running = false;
  /** By when the commit in flight was due to start (monotonic): its first reading plus its window. */
  private inFlightDue: number | null = null;
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
    // Closed, the batch being formed takes no reading under the new size.
    if (this.n > 0) this.close();
    if (this.waitingCount() > 0) this.kick();
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
    if (this.n === 0) {
      this.currentSince = this.opts.clock.monotonic();
      this.currentWindow = batchWindow(this.opts.flushMs, this.opts.offline?.() === true);
    }
    this.current[this.n++] = r;
    if (this.n >= this.opts.maxReadings) {
      this.close();
      this.kick();
    } else if (this.timer === null) {
      this.timer = this.opts.clock.setTimeout(this.onTimer, this.currentWindow);
    }
  }

  // Made once: an arrow function inside add() would have every call allocate a context for it.
  private readonly onTimer = (): void => {
    this.timer = null;
    this.kick();
  };

  /**
   * For the watchdog: the oldest reading not yet through a commit (committed or failed, both are
   * progress) must be through by its batch's window after it arrived; nothing waiting is nothing due.
   */
  progress(): Progress {
    const first = this.closed[0];
    const current = this.currentSince === null ? null : this.currentSince + this.currentWindow;
    const due = this.inFlightDue ?? (first === undefined ? null : first.since + first.window) ?? current;
    return { due, what: 'commit' };
  }

  stats(): BatcherStats {
    return { ...this.counts, waiting: this.waitingCount() };
  }

  private waitingCount(): number {
    return this.closedReadings + this.n;
  }

  /** Ends the batch being formed (it keeps its readings) and starts the next one's array. */
  private take(): Batch {
    const readings = this.current;
    readings.length = this.n; // trims the spare slots in place
    const since = this.currentSince ?? this.opts.clock.monotonic();
    this.current = new Array<Reading>(Math.min(this.opts.maxReadings, this.n + (this.n >> 2) + 8));
    this.n = 0;
    this.currentSince = null;
    return { readings, since, window: this.currentWindow };
  }

  /** The batch being formed is full: it waits, closed, for the commit in flight. */
  private close(): void {
    const b = this.take();
    this.closed.push(b);
    this.closedReadings += b.readings.length;
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
    const target = this.taken + this.waitingCount();
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
    let next: Batch | undefined = this.closed.shift();
    if (next !== undefined) this.closedReadings -= next.readings.length;
    else if (this.n > 0) next = this.take();
    // Readings left over were waiting before this commit started: they go next, not after a new timer.
    // (Each batch keeps its own first reading's arrival, for its deadline and the watchdog.)
    this.due = this.waitingCount() > 0;
    if (!this.due) this.clearTimer();
    if (next === undefined) return;
    const batch = next.readings;
    this.inFlightDue = next.since + next.window;
    this.taken += batch.length;
    const durableBy = next.since + 2 * this.opts.flushMs;
    this.inFlight = this.run(batch, durableBy).finally(() => {
      this.finished += batch.length;
      this.inFlight = null;
      this.inFlightDue = null;
      if (this.running && (this.due || this.closed.length > 0)) this.commitNext();
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

interface Batch {
  readings: Reading[];
  /** Monotonic arrival of its first reading, and how long it was to wait (batchWindow). */
  since: number;
  window: number;
}

function checkLimits(o: Pick<BatcherOptions, 'flushMs' | 'maxReadings'>): void {
  if (!(o.flushMs > 0) || !(o.maxReadings >= 1)) {
    throw new RangeError('Batcher needs flushMs > 0 and maxReadings >= 1');
  }
}
