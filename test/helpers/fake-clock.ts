// A Clock whose time moves only when a test says so: advance(ms) runs the timers that fall due, in
// due order, with both clocks set to each timer's due time (timers they set fire too if due).
// Timers run on monotonic time; the wall clock is monotonic time plus an offset that set() steps,
// like NTP does, without moving monotonic time or firing anything.

import type { Clock } from '../../src/types.js';

interface Timer {
  id: number;
  due: number;
  fn: () => void;
}

export class FakeClock implements Clock {
  /** Monotonic time; starts equal to the wall clock so unstepped tests read one time. */
  private t: number;
  private wallOffset = 0;
  private seq = 0;
  private timers: Timer[] = [];

  constructor(start = 1_764_380_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t + this.wallOffset;
  }

  monotonic(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const timer = { id: ++this.seq, due: this.t + Math.max(0, ms), fn };
    this.timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  get pending(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, firing due timers in order (timers they set fire too if due). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = this.nextDue(end);
      if (next === undefined) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.t = Math.max(this.t, next.due);
      next.fn();
    }
    this.t = Math.max(this.t, end);
  }

  /** Like advance(), but lets promises settle between timers (for async ticks). */
  async advanceAsync(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await flush();
      const next = this.nextDue(end);
      if (next === undefined) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.t = Math.max(this.t, next.due);
      next.fn();
    }
    this.t = Math.max(this.t, end);
    await flush();
  }

  /** Steps the wall clock to `t` (an NTP step): monotonic time stays, no timer fires. */
  set(t: number): void {
    this.wallOffset = t - this.t;
  }

  /** Lets `ms` pass on both clocks without firing timers (a blocked event loop). */
  stall(ms: number): void {
    this.t += Math.max(0, ms);
  }

  private nextDue(end: number): Timer | undefined {
    let best: Timer | undefined;
    for (const t of this.timers) {
      if (
        t.due <= end &&
        (best === undefined || t.due < best.due || (t.due === best.due && t.id < best.id))
      ) {
        best = t;
      }
    }
    return best;
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Lets pending promise callbacks (and I/O callbacks already queued) run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
