// Recent commit and delivery rates from the queue's own counters (readings since start), and the
// time a backlog needs to drain at the current net rate. The counters are sampled at most once a
// second by whoever asks (a reading arriving, a snapshot), kept for one window: bounded memory and
// no timer of its own.

export const DRAIN_WINDOW_MS = 10_000;
const SAMPLE_EVERY_MS = 1000;

export interface QueueRates {
  /** Readings committed per second over the window. */
  committedPerSecond: number;
  /** Readings acknowledged by the broker per second over the window. */
  deliveredPerSecond: number;
}

interface Sample {
  t: number;
  committed: number;
  delivered: number;
}

export class DrainEstimate {
  private samples: Sample[] = [];

  constructor(private readonly windowMs = DRAIN_WINDOW_MS) {}

  /** Records the counters at monotonic time `t` unless a sample is less than a second old. */
  sample(t: number, committed: number, delivered: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last !== undefined && t - last.t < SAMPLE_EVERY_MS) return;
    this.samples.push({ t, committed, delivered });
    // Keep one sample at least a window old as the baseline of the rates.
    while (this.samples.length > 2 && t - this.samples[1]!.t >= this.windowMs) this.samples.shift();
  }

  /** Rates from the oldest kept sample to these counters at `t`; null under a second of history. */
  rates(t: number, committed: number, delivered: number): QueueRates | null {
    const base = this.samples[0];
    if (base === undefined || t - base.t < SAMPLE_EVERY_MS) return null;
    const s = (t - base.t) / 1000;
    return {
      committedPerSecond: round1((committed - base.committed) / s),
      deliveredPerSecond: round1((delivered - base.delivered) / s),
    };
  }
}

/** Seconds until `backlog` readings are gone at these rates; null when the backlog is not shrinking. */
export function drainSeconds(backlog: number, rates: QueueRates | null): number | null {
  if (rates === null || backlog <= 0) return null;
  const net = rates.deliveredPerSecond - rates.committedPerSecond;
  return net > 0 ? Math.ceil(backlog / net) : null;
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
