// Doubling delays between min and max: the pause before the n-th retry is min * 2^(n-1), capped.
// Deterministic on purpose: these pace probes of one device or one port, not a crowd of clients.

export class ExponentialDelay {
  private readonly min: number;
  private readonly max: number;
  private n = 0;

  constructor(min: number, max: number) {
    this.min = Math.max(0, min);
    this.max = Math.max(this.min, max);
  }

  /** How many delays were handed out since the last reset. */
  get attempts(): number {
    return this.n;
  }

  next(): number {
    const d = Math.min(this.max, this.min * 2 ** Math.min(this.n, 30));
    this.n += 1;
    return d;
  }

  reset(): void {
    this.n = 0;
  }
}
