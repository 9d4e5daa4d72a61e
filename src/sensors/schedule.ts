// A fixed time grid for periodic work (sensor polls, counter reports). Each timeout is computed
// from the grid (t0 + k * period), never from the previous callback, so delays do not add up to
// drift. A tick that comes more than a period late (blocked event loop, or the previous async
// tick still running) does not fire the missed slots in a burst: they are skipped and counted.
// The grid runs on monotonic time: a wall-clock step (NTP, a board booting with an old time)
// neither freezes it (step back) nor makes it report a day of skipped slots (step forward).

import type { Clock, Progress } from '../types.js';

export interface FixedGridOptions {
  readonly clock: Clock;
  /** Grid spacing in ms (> 0). */
  readonly period: number;
  /**
   * Called at t0 + k * period with that slot's wall-clock time (for timestamps); a returned
   * promise is awaited first.
   */
  readonly tick: (scheduledTs: number) => void | Promise<void>;
  /** Slots dropped because a tick came more than a period late. */
  readonly onSkip?: (skipped: number) => void;
  /** A tick threw or rejected; the grid keeps going. */
  readonly onError?: (err: unknown) => void;
  /** First slot (ms, on `clock.monotonic()`); default: the time of start(). */
  readonly t0?: number;
  /**
   * The longest one tick may take when everything it waits for times out (a Modbus poll of a dead
   * bus): the watchdog allows it before it calls the grid stalled. Default 0 (a synchronous tick).
   */
  readonly maxTickMs?: number;
}

export class FixedGrid {
  private readonly opts: FixedGridOptions;
  private t0 = 0;
  private k = 0;
  private timer: unknown = undefined;
  private running = false;
  private inFlight: Promise<void> | null = null;

  constructor(opts: FixedGridOptions) {
    if (!(Number.isFinite(opts.period) && opts.period > 0)) {
      throw new RangeError(`FixedGrid period must be a positive number of ms, got ${opts.period}`);
    }
    this.opts = opts;
  }

  get started(): boolean {
    return this.running;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.t0 = this.opts.t0 ?? this.opts.clock.monotonic();
    this.k = 0;
    this.schedule();
  }

  /** Stops scheduling; resolves once a tick that is still running has settled. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== undefined) {
      this.opts.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.inFlight !== null) await this.inFlight;
  }

  /**
   * For the watchdog: the next slot must fire by its time plus maxTickMs (a tick still running
   * delays it, within that budget). A skip moves the slot on, so a late but live grid stays due.
   */
  progress(): Progress {
    const what = `tick every ${this.opts.period} ms`;
    if (!this.running) return { due: null, what };
    return { due: this.slot(this.k) + (this.opts.maxTickMs ?? 0), what };
  }

  private slot(k: number): number {
    return this.t0 + k * this.opts.period;
  }

  private schedule(): void {
    if (!this.running) return;
    const delay = Math.max(0, this.slot(this.k) - this.opts.clock.monotonic());
    this.timer = this.opts.clock.setTimeout(() => this.fire(), delay);
  }

  private fire(): void {
    this.timer = undefined;
    if (!this.running) return;
    const { period } = this.opts;
    const { clock } = this.opts;
    const mono = clock.monotonic();
    const late = mono - this.slot(this.k);
    if (late > period) {
      // Jump to the latest slot that is already due; the ones before it are dropped.
      const skipped = Math.floor(late / period);
      this.k += skipped;
      this.report(() => this.opts.onSkip?.(skipped));
    }
    // The slot as wall time: now, less how late this tick runs (a step moves timestamps only).
    // Monotonic time has sub-ms precision; timestamps are integer ms.
    const scheduled = Math.round(clock.now() - (mono - this.slot(this.k)));
    this.k += 1;
    let result: void | Promise<void>;
    try {
      result = this.opts.tick(scheduled);
    } catch (err) {
      this.report(() => this.opts.onError?.(err));
      result = undefined;
    }
    if (result instanceof Promise) {
      this.inFlight = result.then(
        () => this.afterTick(),
        (err: unknown) => {
          this.report(() => this.opts.onError?.(err));
          this.afterTick();
        },
      );
    } else {
      this.schedule();
    }
  }

  private afterTick(): void {
    this.inFlight = null;
    this.schedule();
  }

  /** Callbacks must not break the grid. */
  private report(fn: () => void): void {
    try {
      fn();
    } catch {
      // A failing onSkip/onError handler is the caller's bug; the schedule must survive it.
    }
  }
}
