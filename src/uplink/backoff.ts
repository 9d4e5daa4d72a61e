// Reconnect delays: exponential with full jitter (AWS architecture blog, "Exponential Backoff
// and Jitter"), floored at `minMs` because IoT Core throttles CONNECTs per client id: the n-th
// delay is uniform in [minMs, min(maxMs, minMs * 2^n)].

export interface BackoffOptions {
  minMs: number;
  maxMs: number;
  /** Uniform in [0, 1); injectable for tests. */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly random: () => number;

  constructor(private opts: BackoffOptions) {
    checkRange(opts);
    this.random = opts.random ?? Math.random;
  }

  /** A reload: later delays use the new range; the attempt count stays (a long outage stays long). */
  retune(range: Pick<BackoffOptions, 'minMs' | 'maxMs'>): void {
    checkRange(range);
    this.opts = { ...this.opts, minMs: range.minMs, maxMs: range.maxMs };
  }

  /** The next delay in ms; each call widens the window until it reaches maxMs. */
  next(): number {
    const { minMs, maxMs } = this.opts;
    const cap = Math.min(maxMs, Math.max(minMs, 1) * 2 ** Math.min(this.attempt, 52));
    this.attempt++;
    return Math.round(minMs + this.random() * (cap - minMs));
  }

  /** After a successful connection: start again from the smallest window. */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}

function checkRange(o: Pick<BackoffOptions, 'minMs' | 'maxMs'>): void {
  if (!(o.minMs >= 0) || !(o.maxMs >= o.minMs)) throw new RangeError('Backoff: need 0 <= minMs <= maxMs');
}
