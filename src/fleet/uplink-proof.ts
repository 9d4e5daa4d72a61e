// After a remote change to uplink.*, the gateway must prove it still reaches the cloud: the
// connection up and unbroken for HOLD_MS with deliveries moving (or nothing to deliver), within
// the allowed time. A connection the broker closes after each publish (a payload over its limit)
// comes up again and again: the reconnect count tells it apart from one that holds.

import type { Clock } from '../types.js';

/** What the proof reads of the uplink (the status model has it all). */
export interface LinkProbe {
  state: string;
  reconnects: number;
  /** Readings acknowledged since start. */
  delivered: number;
  /** Readings queued, waiting to be delivered. */
  backlog: number;
  lastError: string | null;
}

export type ProofResult = 'proven' | 'cancelled' | { failed: string };

const HOLD_MS = 3000;
const STEP_MS = 250;

export class UplinkProof {
  private timer: unknown = null;
  private finish: ((r: ProofResult) => void) | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly probe: () => LinkProbe,
    private readonly withinMs: number,
    private readonly holdMs = Math.min(HOLD_MS, withinMs / 2),
  ) {}

  run(): Promise<ProofResult> {
    const deadline = this.clock.monotonic() + this.withinMs;
    let upSince: number | null = null;
    let base: LinkProbe | null = null;
    return new Promise((resolve) => {
      this.finish = resolve;
      const step = (): void => {
        const now = this.clock.monotonic();
        const p = this.probe();
        if (p.state !== 'connected' || (base !== null && p.reconnects !== base.reconnects)) {
          upSince = null;
          base = null;
        } else if (upSince === null || base === null) {
          upSince = now;
          base = p;
        } else if (now - upSince >= this.holdMs && (p.delivered > base.delivered || p.backlog === 0)) {
          return this.end('proven');
        }
        if (now >= deadline) {
          return this.end({ failed: `uplink ${p.state}${p.lastError === null ? '' : `, ${p.lastError}`}` });
        }
        this.timer = this.clock.setTimeout(step, STEP_MS);
      };
      step();
    });
  }

  cancel(): void {
    this.end('cancelled');
  }

  private end(r: ProofResult): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    const f = this.finish;
    this.finish = null;
    f?.(r);
  }
}
